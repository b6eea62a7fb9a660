//! Tokens of the pies-style syntax.
//!
//! The lexer never fails as a whole: it returns every token it could read and
//! a list of problems (unterminated strings and comments). Comments start only
//! at the beginning of a token, so `unix:///run/tend.sock` and `a#b` stay
//! single words.

/// A 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Kind {
    /// A bare word: `/usr/bin/x`, `022`, `USR1`, `k=v`.
    Word(String),
    /// A quoted string, escapes already applied.
    Str(String),
    /// `{`
    LBrace,
    /// `}`
    RBrace,
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `;`
    Semi,
    /// End of input (always the last token).
    Eof,
}

impl Kind {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match self {
            Kind::Word(w) => format!("`{}`", clip(w)),
            Kind::Str(s) => format!("string \"{}\"", clip(s)),
            Kind::LBrace => "`{`".to_string(),
            Kind::RBrace => "`}`".to_string(),
            Kind::LParen => "`(`".to_string(),
            Kind::RParen => "`)`".to_string(),
            Kind::Comma => "`,`".to_string(),
            Kind::Semi => "`;`".to_string(),
            Kind::Eof => "end of file".to_string(),
        }
    }
}

/// Shorten long user text so one error cannot flood the terminal.
pub(super) fn clip(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(MAX).collect();
        t.push('…');
        t
    }
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Token {
    /// What it is.
    pub kind: Kind,
    /// Where its first character is.
    pub at: Pos,
}

/// A problem found while reading tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LexError {
    /// Where the offending construct starts.
    pub at: Pos,
    /// What is wrong.
    pub message: String,
}

/// The result of reading a whole text.
#[derive(Debug)]
pub(super) struct Lexed {
    /// The tokens, ending with [`Kind::Eof`].
    pub tokens: Vec<Token>,
    /// Problems found.
    pub errors: Vec<LexError>,
    /// True when the input ended inside a string or comment, so "missing `;`"
    /// at the end would only repeat the same problem.
    pub truncated: bool,
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '{' | '}' | '(' | ')' | ',' | ';' | '"')
}

/// A cursor over the input that keeps line and column up to date.
struct Cursor {
    chars: Vec<char>,
    i: usize,
    pos: Pos,
}

impl Cursor {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek2(&self) -> Option<char> {
        self.chars.get(self.i + 1).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.pos.line += 1;
            self.pos.col = 1;
        } else {
            self.pos.col += 1;
        }
        Some(c)
    }
}

/// Split `text` into tokens.
pub(super) fn tokenize(text: &str) -> Lexed {
    let mut cur = Cursor {
        chars: text.chars().collect(),
        i: 0,
        pos: Pos { line: 1, col: 1 },
    };
    let mut out = Lexed {
        tokens: Vec::new(),
        errors: Vec::new(),
        truncated: false,
    };
    while let Some(c) = cur.peek() {
        let at = cur.pos;
        let kind = match c {
            c if c.is_whitespace() => {
                cur.bump();
                continue;
            }
            '#' => {
                skip_line(&mut cur);
                continue;
            }
            '/' if cur.peek2() == Some('/') => {
                skip_line(&mut cur);
                continue;
            }
            '/' if cur.peek2() == Some('*') => {
                if !skip_block_comment(&mut cur) {
                    out.errors.push(LexError {
                        at,
                        message: "comment `/*` is never closed by `*/`".to_string(),
                    });
                    out.truncated = true;
                    break;
                }
                continue;
            }
            '"' => match double_quoted(&mut cur) {
                Some(s) => Kind::Str(s),
                None => {
                    out.errors.push(LexError {
                        at,
                        message: "string is never closed by `\"`".to_string(),
                    });
                    out.truncated = true;
                    break;
                }
            },
            '\'' => match single_quoted(&mut cur) {
                Some(s) => Kind::Str(s),
                None => {
                    out.errors.push(LexError {
                        at,
                        message: "string is never closed by `'`".to_string(),
                    });
                    out.truncated = true;
                    break;
                }
            },
            '{' | '}' | '(' | ')' | ',' | ';' => {
                cur.bump();
                punct(c)
            }
            _ => Kind::Word(word(&mut cur)),
        };
        out.tokens.push(Token { kind, at });
    }
    out.tokens.push(Token {
        kind: Kind::Eof,
        at: cur.pos,
    });
    out
}

fn punct(c: char) -> Kind {
    match c {
        '{' => Kind::LBrace,
        '}' => Kind::RBrace,
        '(' => Kind::LParen,
        ')' => Kind::RParen,
        ',' => Kind::Comma,
        _ => Kind::Semi,
    }
}

fn skip_line(cur: &mut Cursor) {
    while let Some(c) = cur.bump() {
        if c == '\n' {
            break;
        }
    }
}

/// Skip `/* … */`; false when the input ends first.
fn skip_block_comment(cur: &mut Cursor) -> bool {
    cur.bump();
    cur.bump();
    while let Some(c) = cur.bump() {
        if c == '*' && cur.peek() == Some('/') {
            cur.bump();
            return true;
        }
    }
    false
}

/// Read `"…"` with `\"`, `\\`, `\n`, `\t`, `\r` and backslash-newline
/// (continuation). Any other escape is kept as written, so commands like
/// `"grep a\.b"` reach the command splitter unchanged. None when unterminated.
fn double_quoted(cur: &mut Cursor) -> Option<String> {
    cur.bump();
    let mut s = String::new();
    loop {
        match cur.bump()? {
            '"' => return Some(s),
            '\\' => match cur.bump()? {
                '"' => s.push('"'),
                '\\' => s.push('\\'),
                'n' => s.push('\n'),
                't' => s.push('\t'),
                'r' => s.push('\r'),
                '\n' => {}
                other => {
                    s.push('\\');
                    s.push(other);
                }
            },
            c => s.push(c),
        }
    }
}

/// Read `'…'` literally. None when unterminated.
fn single_quoted(cur: &mut Cursor) -> Option<String> {
    cur.bump();
    let mut s = String::new();
    loop {
        match cur.bump()? {
            '\'' => return Some(s),
            c => s.push(c),
        }
    }
}

fn word(cur: &mut Cursor) -> String {
    let mut s = String::new();
    while let Some(c) = cur.peek() {
        if ends_word(c) {
            break;
        }
        s.push(c);
        cur.bump();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Kind> {
        tokenize(text).tokens.into_iter().map(|t| t.kind).collect()
    }

    fn w(s: &str) -> Kind {
        Kind::Word(s.to_string())
    }

    #[test]
    fn words_and_punctuation() {
        assert_eq!(
            kinds("umask 022; flags (a, b) { x; }"),
            vec![
                w("umask"),
                w("022"),
                Kind::Semi,
                w("flags"),
                Kind::LParen,
                w("a"),
                Kind::Comma,
                w("b"),
                Kind::RParen,
                Kind::LBrace,
                w("x"),
                Kind::Semi,
                Kind::RBrace,
                Kind::Eof
            ]
        );
    }

    #[test]
    fn urls_and_paths_are_words() {
        assert_eq!(
            kinds("socket unix:///run/x.sock; a#b k=v /usr/bin/x"),
            vec![
                w("socket"),
                w("unix:///run/x.sock"),
                Kind::Semi,
                w("a#b"),
                w("k=v"),
                w("/usr/bin/x"),
                Kind::Eof
            ]
        );
    }

    #[test]
    fn comments_are_skipped() {
        assert_eq!(
            kinds("a # one\n// two\n/* three\n four */ b"),
            vec![w("a"), w("b"), Kind::Eof]
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(
            kinds(r#""a \"b\" \\ \n \t c\.d" 'x\y'"#),
            vec![
                Kind::Str("a \"b\" \\ \n \t c\\.d".to_string()),
                Kind::Str("x\\y".to_string()),
                Kind::Eof
            ]
        );
        assert_eq!(
            kinds("\"a\\\nb\""),
            vec![Kind::Str("ab".to_string()), Kind::Eof]
        );
    }

    #[test]
    fn positions_are_one_based_characters() {
        let toks = tokenize("a\n  é \"x\"\n\tb").tokens;
        let at: Vec<(usize, usize)> = toks.iter().map(|t| (t.at.line, t.at.col)).collect();
        assert_eq!(at, vec![(1, 1), (2, 3), (2, 5), (3, 2), (3, 3)]);
    }

    #[test]
    fn unterminated_string_and_comment() {
        let l = tokenize("a \"open");
        assert!(l.truncated);
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].at, Pos { line: 1, col: 3 });
        assert!(l.errors[0].message.contains("never closed"));
        let l = tokenize("a\n /* open");
        assert_eq!(l.errors[0].at, Pos { line: 2, col: 2 });
        assert_eq!(l.tokens.last().map(|t| &t.kind), Some(&Kind::Eof));
        let l = tokenize("'open");
        assert_eq!(l.errors.len(), 1);
    }

    #[test]
    fn clip_long_text() {
        assert_eq!(clip("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(clip(&long).chars().count(), 41);
    }
}
