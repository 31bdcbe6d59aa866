//! Groups lexed lines into keyword nodes with optional `{ ... }` blocks.
//!
//! keepalived is line-oriented: a keyword takes the rest of its line as arguments; a block
//! may open on the same line or the next one; several statements may share a line when
//! braces separate them (`virtual_ipaddress { 10.0.0.1 }`).

use super::diagnostic::{Diagnostics, Location};
use super::lexer::{Line, Token, TokenKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub keyword: Token,
    pub args: Vec<Token>,
    pub block: Option<Vec<Node>>,
    /// Where the block's `{` and `}` were written (keepalived reports some findings there).
    pub block_at: Option<Location>,
    pub block_end: Option<Location>,
}

impl Node {
    pub fn at(&self) -> &Location {
        &self.keyword.at
    }

    pub fn name(&self) -> &str {
        &self.keyword.text
    }

    pub fn arg(&self, index: usize) -> Option<&Token> {
        self.args.get(index)
    }

    /// The block's statements, or nothing when the keyword has no block.
    pub fn children(&self) -> &[Node] {
        self.block.as_deref().unwrap_or_default()
    }

    /// Where the block ends (the `}`), else the keyword's own line.
    pub fn end(&self) -> &Location {
        self.block_end.as_ref().unwrap_or(&self.keyword.at)
    }

    /// The words of the line as keepalived's handlers see them: keyword, then arguments.
    pub fn words(&self) -> impl Iterator<Item = &Token> {
        std::iter::once(&self.keyword).chain(&self.args)
    }
}

struct Frame {
    nodes: Vec<Node>,
    opened_at: Option<Location>,
}

pub(crate) fn parse(lines: Vec<Line>, diags: &mut Diagnostics) -> Vec<Node> {
    // stack[0] is the top level; each open block pushes a frame.
    let mut stack = vec![Frame {
        nodes: Vec::new(),
        opened_at: None,
    }];
    for line in lines {
        // Whether the next word starts a statement (true at line start and after a brace).
        let mut statement_start = true;
        for token in line {
            match token.kind {
                TokenKind::Open => {
                    let frame = stack.last_mut().expect("stack never empty");
                    let attachable = frame.nodes.last().is_some_and(|n| n.block.is_none());
                    if !attachable {
                        diags.warn(&token.at, "{", "unexpected '{' without a keyword");
                    }
                    stack.push(Frame {
                        nodes: Vec::new(),
                        opened_at: attachable.then(|| token.at.clone()),
                    });
                    statement_start = true;
                }
                TokenKind::Close => {
                    if stack.len() == 1 {
                        diags.error(&token.at, "}", "extra '}' without a matching '{'");
                    } else {
                        close_frame(&mut stack, Some(token.at.clone()));
                    }
                    statement_start = true;
                }
                TokenKind::Word | TokenKind::Quoted => {
                    let frame = stack.last_mut().expect("stack never empty");
                    match frame.nodes.last_mut() {
                        Some(node) if !statement_start => node.args.push(token),
                        _ => frame.nodes.push(Node {
                            keyword: token,
                            args: Vec::new(),
                            block: None,
                            block_at: None,
                            block_end: None,
                        }),
                    }
                    statement_start = false;
                }
            }
        }
    }
    while stack.len() > 1 {
        if let Some(at) = &stack.last().expect("len > 1").opened_at {
            // keepalived counts them at the end of the file, without a line.
            diags.push_unlocated(
                super::diagnostic::Severity::Error,
                super::diagnostic::Verdict::ConfigError,
                at,
                "{",
                "block is never closed: missing '}'",
            );
        }
        close_frame(&mut stack, None);
    }
    stack.pop().map(|f| f.nodes).unwrap_or_default()
}

fn close_frame(stack: &mut Vec<Frame>, closed_at: Option<Location>) {
    let Some(frame) = stack.pop() else { return };
    // A block without an owner (stray '{') was already reported; its content goes.
    if frame.opened_at.is_none() {
        return;
    }
    if let Some(owner) = stack.last_mut().and_then(|f| f.nodes.last_mut()) {
        owner.block = Some(frame.nodes);
        owner.block_at = frame.opened_at;
        owner.block_end = closed_at;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lexer::lex_str;
    use std::path::Path;

    fn tree(text: &str) -> (Vec<Node>, Diagnostics) {
        let mut diags = Diagnostics::default();
        let lexed = lex_str(text, Path::new("t.conf"), &mut diags).unwrap();
        (parse(lexed.lines, &mut diags), diags)
    }

    fn shape(nodes: &[Node]) -> String {
        nodes
            .iter()
            .map(|n| {
                let mut s = n.name().to_string();
                for a in &n.args {
                    s.push(' ');
                    s.push_str(&a.text);
                }
                if let Some(b) = &n.block {
                    s.push_str(&format!(" [{}]", shape(b)));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn block_on_same_line_next_line_and_inline() {
        let (nodes, diags) = tree("a 1 {\n b 2\n}\nc\n{\n d\n}\ne { f g } h\n");
        assert!(diags.list.is_empty(), "{:?}", diags.list);
        assert_eq!(shape(&nodes), "a 1 [b 2]; c [d]; e [f g]; h");
    }

    #[test]
    fn nested_blocks_on_one_line() {
        let (nodes, _) = tree("x { y { z } w }");
        assert_eq!(shape(&nodes), "x [y [z]; w]");
    }

    #[test]
    fn extra_close_is_an_error_with_its_line() {
        let (_, diags) = tree("a {\n}\n}\n");
        assert_eq!(diags.list.len(), 1);
        assert_eq!(diags.list[0].line, 3);
        assert!(diags.list[0].is_error());
    }

    #[test]
    fn unclosed_block_is_an_error_at_the_brace() {
        let (nodes, diags) = tree("a {\n b\n");
        assert_eq!(shape(&nodes), "a [b]");
        assert_eq!(diags.list.len(), 1);
        assert_eq!(diags.list[0].line, 1);
    }

    #[test]
    fn stray_open_brace_is_reported_and_its_content_dropped() {
        let (nodes, diags) = tree("{ a }\nb\n");
        assert_eq!(shape(&nodes), "b");
        assert_eq!(diags.list.len(), 1);
    }
}
