//! Checks across components, shared by both syntaxes: unique tags, known
//! prerequisites, no component requiring itself, no dependency cycles.

use super::model::{ComponentSpec, Location};
use super::{ConfigError, values};
use std::collections::HashMap;

/// Where each prerequisite of one component was written (parallel to
/// `ComponentSpec::prerequisites`; missing entries fall back to the origin).
pub(super) type PrereqSites = Vec<Location>;

fn error_at(at: &Location, message: String) -> ConfigError {
    ConfigError {
        file: at.file.clone(),
        line: at.line,
        col: at.col,
        message,
    }
}

fn site(at: &Location) -> String {
    format!("{}:{}:{}", at.file.display(), at.line, at.col)
}

/// Every problem across `components`; `sites[i]` belongs to `components[i]`.
pub(super) fn components(components: &[ComponentSpec], sites: &[PrereqSites]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    // First definition of each tag; later ones are errors and left out of the graph.
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, c) in components.iter().enumerate() {
        match first.get(c.tag.as_str()) {
            Some(&j) => {
                let prev = components
                    .get(j)
                    .map(|p| site(&p.origin))
                    .unwrap_or_default();
                errors.push(error_at(
                    &c.origin,
                    format!("duplicate component `{}`; first defined at {prev}", c.tag),
                ));
            }
            None => {
                first.insert(c.tag.as_str(), i);
            }
        }
    }
    let mut tags: Vec<&str> = first.keys().copied().collect();
    // Sorted so a tie between two suggestions always picks the same one.
    super::error::sort_with(&mut tags, &|a, b| a.cmp(b));
    for (i, c) in components.iter().enumerate() {
        for (k, p) in c.prerequisites.iter().enumerate() {
            let at = sites.get(i).and_then(|s| s.get(k)).unwrap_or(&c.origin);
            if *p == c.tag {
                errors.push(error_at(
                    at,
                    format!("component `{}` lists itself as a prerequisite", c.tag),
                ));
            } else if !first.contains_key(p.as_str()) {
                errors.push(error_at(
                    at,
                    values::with_suggestion(
                        format!("component `{}` requires `{p}`, which is not defined", c.tag),
                        p,
                        &tags,
                    ),
                ));
            }
        }
    }
    errors.extend(cycles(components, &first));
    errors
}

/// Dependency cycles (self-edges and unknown tags excluded: reported above).
/// Iterative depth-first search; each back edge is one reported cycle.
fn cycles(components: &[ComponentSpec], first: &HashMap<&str, usize>) -> Vec<ConfigError> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Gray,
        Black,
    }
    let edges: Vec<Vec<usize>> = components
        .iter()
        .map(|c| {
            let mut e: Vec<usize> = c
                .prerequisites
                .iter()
                .filter(|p| **p != c.tag)
                .filter_map(|p| first.get(p.as_str()).copied())
                .collect();
            e.dedup();
            e
        })
        .collect();
    let mut color = vec![Color::White; components.len()];
    let mut errors = Vec::new();
    for root in 0..components.len() {
        if first.get(components[root].tag.as_str()) != Some(&root) || color[root] != Color::White {
            continue;
        }
        // Stack of (node, next edge index); the gray path is the stack itself.
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        color[root] = Color::Gray;
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&to) = edges.get(node).and_then(|e| e.get(*next)) else {
                color[node] = Color::Black;
                stack.pop();
                continue;
            };
            *next += 1;
            match color[to] {
                Color::White => {
                    color[to] = Color::Gray;
                    stack.push((to, 0));
                }
                Color::Gray => errors.push(cycle_error(components, &stack, to)),
                Color::Black => {}
            }
        }
    }
    errors
}

/// "dependency cycle: a -> b -> a", reported at the component where it starts.
fn cycle_error(components: &[ComponentSpec], stack: &[(usize, usize)], to: usize) -> ConfigError {
    let start = stack.iter().position(|(n, _)| *n == to).unwrap_or(0);
    let mut names: Vec<&str> = stack
        .get(start..)
        .unwrap_or_default()
        .iter()
        .filter_map(|(n, _)| components.get(*n).map(|c| c.tag.as_str()))
        .collect();
    let origin = components
        .get(to)
        .map(|c| c.origin.clone())
        .unwrap_or_default();
    if let Some(c) = components.get(to) {
        names.push(c.tag.as_str());
    }
    error_at(&origin, format!("dependency cycle: {}", names.join(" -> ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comp(tag: &str, line: usize, prereqs: &[&str]) -> ComponentSpec {
        let mut c = ComponentSpec::new(tag, vec!["/bin/true".into()]);
        c.prerequisites = prereqs.iter().map(|s| s.to_string()).collect();
        c.origin = Location {
            file: "f".into(),
            line,
            col: 1,
        };
        c
    }

    fn messages(cs: &[ComponentSpec]) -> Vec<String> {
        components(cs, &[])
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    }

    #[test]
    fn clean_graph_passes() {
        let cs = [
            comp("a", 1, &[]),
            comp("b", 2, &["a"]),
            comp("c", 3, &["a", "b"]),
        ];
        assert!(messages(&cs).is_empty());
    }

    #[test]
    fn duplicates_unknown_and_self() {
        let cs = [
            comp("a", 1, &["a"]),
            comp("a", 2, &[]),
            comp("web", 3, &["db"]),
        ];
        assert_eq!(
            messages(&cs),
            vec![
                "f:2:1: duplicate component `a`; first defined at f:1:1",
                "f:1:1: component `a` lists itself as a prerequisite",
                "f:3:1: component `web` requires `db`, which is not defined",
            ]
        );
    }

    #[test]
    fn cycles_are_named() {
        let cs = [
            comp("a", 1, &["b"]),
            comp("b", 2, &["c"]),
            comp("c", 3, &["a"]),
            comp("d", 4, &["e"]),
            comp("e", 5, &["d"]),
            comp("f", 6, &["a"]),
        ];
        assert_eq!(
            messages(&cs),
            vec![
                "f:1:1: dependency cycle: a -> b -> c -> a",
                "f:4:1: dependency cycle: d -> e -> d",
            ]
        );
    }

    #[test]
    fn long_chain_does_not_recurse() {
        let names: Vec<String> = (0..100_000).map(|i| format!("c{i}")).collect();
        let cs: Vec<ComponentSpec> = (0..names.len())
            .map(|i| {
                let pre: Vec<&str> = names.get(i + 1).map(|s| s.as_str()).into_iter().collect();
                comp(&names[i], i + 1, &pre)
            })
            .collect();
        assert!(messages(&cs).is_empty());
    }
}
