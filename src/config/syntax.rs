//! The shape of the pies-style syntax, before any keyword means anything:
//! `keyword arg… ;` or `keyword arg… { statement… }`, where an argument is a
//! word, a string or a `(list, of, items)`.
//!
//! Parsing recovers at the next `;` or `}` so one mistake does not hide the
//! next. Block nesting is capped at [`MAX_DEPTH`]: deeper blocks are skipped
//! by counting braces (a loop, not recursion), so no input can exhaust the
//! stack, either here or when the tree is dropped.

use super::lexer::{Kind, LexError, Lexed, Pos, Token};

/// Deepest block nesting kept. tend's grammar needs three
/// (`component { return-code { … } }`); the rest is slack for clearer errors.
pub(super) const MAX_DEPTH: usize = 8;

/// A word or string with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Item {
    /// The text (escapes applied for strings).
    pub text: String,
    /// Where it starts.
    pub at: Pos,
}

/// One argument of a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    /// A bare word or quoted string.
    Scalar(Item),
    /// `( … )`, with the position of `(`.
    List(Vec<Item>, Pos),
}

impl Arg {
    /// Where the argument starts.
    pub fn at(&self) -> Pos {
        match self {
            Arg::Scalar(i) => i.at,
            Arg::List(_, at) => *at,
        }
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Statement {
    /// The keyword.
    pub keyword: Item,
    /// Arguments, in order.
    pub args: Vec<Arg>,
    /// The `{ … }` body, if there was one.
    pub block: Option<Vec<Statement>>,
    /// A syntax error was reported inside it: present, but not to be interpreted.
    pub broken: bool,
}

/// Turn tokens into statements; syntax errors are appended to `errors`.
pub(super) fn parse(lexed: Lexed, errors: &mut Vec<LexError>) -> Vec<Statement> {
    let mut p = Parser {
        tokens: lexed.tokens,
        i: 0,
        errors,
        truncated: lexed.truncated,
    };
    let mut top = p.statements(0, None);
    // Any `}` left over at top level was reported in `statements`; keep going
    // after it so the rest of the file is still checked.
    while !p.at_eof() {
        top.extend(p.statements(0, None));
    }
    top
}

struct Parser<'e> {
    tokens: Vec<Token>,
    i: usize,
    errors: &'e mut Vec<LexError>,
    truncated: bool,
}

impl Parser<'_> {
    fn peek(&self) -> &Kind {
        self.tokens
            .get(self.i)
            .map(|t| &t.kind)
            .unwrap_or(&Kind::Eof)
    }

    fn pos(&self) -> Pos {
        match self.tokens.get(self.i) {
            Some(t) => t.at,
            None => self.tokens.last().map(|t| t.at).unwrap_or_default(),
        }
    }

    fn at_eof(&self) -> bool {
        matches!(self.peek(), Kind::Eof)
    }

    fn advance(&mut self) {
        if self.i < self.tokens.len() {
            self.i += 1;
        }
    }

    fn error(&mut self, at: Pos, message: String) {
        self.errors.push(LexError { at, message });
    }

    /// Statements up to a `}` (left unconsumed) or the end of input.
    /// `opened` is the `{` of the enclosing block, None at top level.
    fn statements(&mut self, depth: usize, opened: Option<Pos>) -> Vec<Statement> {
        let mut out = Vec::new();
        loop {
            match self.peek().clone() {
                Kind::Eof => return out,
                Kind::RBrace => {
                    if opened.is_some() {
                        return out;
                    }
                    let at = self.pos();
                    self.error(at, "unexpected `}` with no block open".to_string());
                    self.advance();
                }
                // A stray `;` (as in `};`) is an empty statement.
                Kind::Semi => self.advance(),
                Kind::Word(w) => {
                    let keyword = Item {
                        text: w,
                        at: self.pos(),
                    };
                    self.advance();
                    out.push(self.statement(keyword, depth));
                }
                other => {
                    let at = self.pos();
                    self.error(
                        at,
                        format!("expected a statement name, found {}", other.describe()),
                    );
                    self.skip_statement();
                }
            }
        }
    }

    /// The rest of a statement after its keyword.
    fn statement(&mut self, keyword: Item, depth: usize) -> Statement {
        let mut st = Statement {
            keyword,
            args: Vec::new(),
            block: None,
            broken: false,
        };
        loop {
            let at = self.pos();
            match self.peek().clone() {
                Kind::Word(s) | Kind::Str(s) => {
                    st.args.push(Arg::Scalar(Item { text: s, at }));
                    self.advance();
                }
                Kind::LParen => match self.list() {
                    Some(items) => st.args.push(Arg::List(items, at)),
                    None => {
                        st.broken = true;
                        self.skip_statement();
                        return st;
                    }
                },
                Kind::Semi => {
                    self.advance();
                    return st;
                }
                Kind::LBrace => {
                    self.advance();
                    st.block = Some(self.block(at, depth + 1));
                    return st;
                }
                Kind::RBrace => {
                    // Forgotten `;` before `}`: say so, but keep the statement.
                    self.error(at, "missing `;` before `}`".to_string());
                    return st;
                }
                Kind::Eof => {
                    if self.truncated {
                        // The unclosed string or comment is the real problem.
                        st.broken = true;
                    } else {
                        self.error(at, "missing `;` at end of file".to_string());
                    }
                    return st;
                }
                other => {
                    self.error(
                        at,
                        format!(
                            "unexpected {} in `{}` statement",
                            other.describe(),
                            st.keyword.text
                        ),
                    );
                    st.broken = true;
                    self.skip_statement();
                    return st;
                }
            }
        }
    }

    /// The body of a block whose `{` (at `open`) was just consumed, and its `}`.
    fn block(&mut self, open: Pos, depth: usize) -> Vec<Statement> {
        if depth > MAX_DEPTH {
            self.error(
                open,
                format!("blocks nested too deeply (more than {MAX_DEPTH} levels)"),
            );
            self.skip_to_close();
            return Vec::new();
        }
        let body = self.statements(depth, Some(open));
        if matches!(self.peek(), Kind::RBrace) {
            self.advance();
        } else if !self.truncated {
            self.error(open, "`{` is never closed by `}`".to_string());
        }
        body
    }

    /// `( item, item, … )`; None (error reported, `(` consumed) when malformed.
    fn list(&mut self) -> Option<Vec<Item>> {
        let open = self.pos();
        self.advance();
        let mut items = Vec::new();
        loop {
            let at = self.pos();
            match self.peek().clone() {
                Kind::RParen => {
                    self.advance();
                    return Some(items);
                }
                Kind::Word(s) | Kind::Str(s) => {
                    items.push(Item { text: s, at });
                    self.advance();
                    match self.peek() {
                        Kind::Comma => self.advance(),
                        Kind::RParen => {}
                        Kind::Eof | Kind::Semi | Kind::LBrace | Kind::RBrace => {
                            if !(self.truncated && self.at_eof()) {
                                self.error(open, "`(` is never closed by `)`".to_string());
                            }
                            return None;
                        }
                        other => {
                            let found = other.describe();
                            let at = self.pos();
                            self.error(at, format!("expected `,` or `)` in list, found {found}"));
                            return None;
                        }
                    }
                }
                Kind::Eof | Kind::Semi | Kind::LBrace | Kind::RBrace => {
                    if !(self.truncated && self.at_eof()) {
                        self.error(open, "`(` is never closed by `)`".to_string());
                    }
                    return None;
                }
                other => {
                    self.error(
                        at,
                        format!("expected a list item, found {}", other.describe()),
                    );
                    return None;
                }
            }
        }
    }

    /// Recovery: skip to just after the next `;`, or to (not past) a `}`
    /// closing the current block, passing over whole nested blocks.
    fn skip_statement(&mut self) {
        let mut depth = 0usize;
        loop {
            match self.peek() {
                Kind::Eof => return,
                Kind::Semi if depth == 0 => {
                    self.advance();
                    return;
                }
                Kind::LBrace => depth += 1,
                Kind::RBrace => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    if depth == 0 {
                        self.advance();
                        return;
                    }
                }
                _ => {}
            }
            self.advance();
        }
    }

    /// Skip a block body whose `{` was consumed, including its `}`.
    fn skip_to_close(&mut self) {
        let mut depth = 1usize;
        loop {
            match self.peek() {
                Kind::Eof => return,
                Kind::LBrace => depth += 1,
                Kind::RBrace => {
                    depth -= 1;
                    if depth == 0 {
                        self.advance();
                        return;
                    }
                }
                _ => {}
            }
            self.advance();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::lexer::tokenize;
    use super::*;

    fn parse_text(text: &str) -> (Vec<Statement>, Vec<LexError>) {
        let lexed = tokenize(text);
        let mut errors = lexed.errors.clone();
        let st = parse(lexed, &mut errors);
        (st, errors)
    }

    fn errs(text: &str) -> Vec<(usize, usize, String)> {
        parse_text(text)
            .1
            .into_iter()
            .map(|e| (e.at.line, e.at.col, e.message))
            .collect()
    }

    #[test]
    fn statements_blocks_and_lists() {
        let (st, e) = parse_text("a 1 \"two\" (x, y,);\nb c { d; e (); }");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].keyword.text, "a");
        assert_eq!(st[0].args.len(), 3);
        match &st[0].args[2] {
            Arg::List(items, at) => {
                assert_eq!(items.len(), 2);
                assert_eq!(*at, Pos { line: 1, col: 11 });
            }
            other => panic!("{other:?}"),
        }
        let body = st[1].block.as_ref().expect("block");
        assert_eq!(body.len(), 2);
        assert_eq!(body[1].keyword.at, Pos { line: 2, col: 10 });
    }

    #[test]
    fn missing_semicolon_before_brace_keeps_statement() {
        let (st, e) = parse_text("c { command x }");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].at.line, e[0].at.col), (1, 15));
        assert_eq!(st[0].block.as_ref().map(|b| b.len()), Some(1));
        assert!(!st[0].block.as_ref().expect("block")[0].broken);
    }

    #[test]
    fn errors_and_recovery() {
        assert_eq!(
            errs("a (x y);\nb;\n}\n(c);\nd"),
            vec![
                (1, 6, "expected `,` or `)` in list, found `y`".to_string()),
                (3, 1, "unexpected `}` with no block open".to_string()),
                (4, 1, "expected a statement name, found `(`".to_string()),
                (5, 2, "missing `;` at end of file".to_string()),
            ]
        );
        assert_eq!(
            errs("a { b;\n"),
            vec![(1, 3, "`{` is never closed by `}`".to_string())]
        );
        assert_eq!(
            errs("a (x;\nb;"),
            vec![(1, 3, "`(` is never closed by `)`".to_string())]
        );
        assert_eq!(
            errs("a ) b;\nc;"),
            vec![(1, 3, "unexpected `)` in `a` statement".to_string())]
        );
    }

    #[test]
    fn recovery_skips_whole_blocks() {
        let (st, e) = parse_text("a , { b; { c; } } d;");
        assert_eq!(e.len(), 1);
        assert_eq!(st.len(), 2);
        assert!(st[0].broken);
        assert_eq!(st[1].keyword.text, "d");
    }

    #[test]
    fn deep_nesting_is_capped() {
        let text = "a {".repeat(100_000) + &"}".repeat(100_000) + " z;";
        let (st, e) = parse_text(&text);
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("nested too deeply"));
        assert_eq!(st.last().map(|s| s.keyword.text.as_str()), Some("z"));
        // Unbalanced, too.
        let (_, e) = parse_text(&"a {".repeat(100_000));
        assert!(!e.is_empty());
    }

    #[test]
    fn truncated_input_does_not_add_eof_errors() {
        assert_eq!(errs("a \"x").len(), 1);
        assert_eq!(errs("a { b (\"x").len(), 1);
    }
}
