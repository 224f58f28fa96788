//! A bound on how deeply a query's expressions nest, checked on the tokens before anything
//! parses the text.
//!
//! The parser, the planner, the optimizer and the evaluation of an expression all recurse
//! over its tree, and dropping a tree recurses too: a 5 KB chain of 2,500 `+` terms once
//! overflowed a worker's stack and aborted every stage of `mcpsiem up`. The parser's own
//! recursion limit catches nested parentheses, functions and `NOT`s, but a flat chain of
//! binary operators is parsed in a loop into a tree as deep as the chain is long. So the
//! bound is on the tokens: every operator may add a level and every parenthesis does, and
//! their sum is an upper bound of the depth of any tree the text can parse into.

use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use crate::QueryError;

/// The default `query.max_expression_depth`: far above hand-written and generated forensic
/// queries (tens of operators), far below what overflows a query thread's stack. Long flat
/// chains also cost planning time that grows steeply with their length (DataFusion's
/// simplifier), another reason to keep the bound low.
pub const DEFAULT_MAX_EXPRESSION_DEPTH: usize = 256;

/// The nesting bound of `sql` (see the module), or `None` when it does not tokenize (the
/// parser then reports the real syntax error).
pub fn nesting_bound(sql: &str) -> Option<usize> {
    let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?;
    let mut operators = 0usize;
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for token in &tokens {
        match token {
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Word(word)
                if matches!(
                    word.keyword,
                    Keyword::AND
                        | Keyword::OR
                        | Keyword::NOT
                        | Keyword::CASE
                        | Keyword::WHEN
                        | Keyword::IS
                        | Keyword::LIKE
                        | Keyword::ILIKE
                        | Keyword::BETWEEN
                        | Keyword::IN
                        | Keyword::SELECT
                ) =>
            {
                operators += 1
            }
            Token::Whitespace(_)
            | Token::Word(_)
            | Token::Number(..)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::Comma
            | Token::Period
            | Token::SemiColon
            | Token::Placeholder(_)
            | Token::EOF => {}
            // Every symbol left is an operator of some kind: + - * / % || = <> < > ~ :: …
            _ => operators += 1,
        }
    }
    Some(operators.saturating_add(deepest))
}

/// Refuses `sql` when its expressions may nest deeper than `max`, with a message the
/// analyst can act on.
pub fn check_nesting(sql: &str, max: usize) -> Result<(), QueryError> {
    match nesting_bound(sql) {
        Some(bound) if bound > max => Err(QueryError::Plan(format!(
            "the query has {bound} operators and nested parentheses, more than query.max_expression_depth \
             ({max}) allows: deeply nested expressions could exhaust the query thread's stack; use IN (…) lists \
             instead of long OR chains, or split the query"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_queries_are_far_below_the_bound() {
        let sql = "SELECT tool_name, count(*) AS calls FROM events \
                   WHERE event_time >= now() - INTERVAL '1 day' AND (mcp_method_name = 'tools/call' OR x IN (1, 2, 3)) \
                   GROUP BY 1 ORDER BY 2 DESC LIMIT 10";
        let bound = nesting_bound(sql).unwrap();
        assert!(bound < 20, "{bound}");
        assert!(check_nesting(sql, DEFAULT_MAX_EXPRESSION_DEPTH).is_ok());
    }

    #[test]
    fn chains_and_nesting_of_every_kind_count() {
        let chain = format!("SELECT {}", vec!["1"; 2500].join(" + "));
        assert!(nesting_bound(&chain).unwrap() >= 2499);
        let parens = format!("SELECT {}1{}", "(".repeat(3000), ")".repeat(3000));
        assert!(nesting_bound(&parens).unwrap() >= 3000);
        let nots = format!("SELECT {} true", "NOT ".repeat(3000));
        assert!(nesting_bound(&nots).unwrap() >= 3000);
        let error = check_nesting(&chain, DEFAULT_MAX_EXPRESSION_DEPTH).unwrap_err();
        assert_eq!(error.code(), "invalid_query");
        assert!(error.to_string().contains("query.max_expression_depth"), "{error}");
    }

    #[test]
    fn text_that_does_not_tokenize_is_left_to_the_parser() {
        assert_eq!(nesting_bound("SELECT 'unterminated"), None);
        assert!(check_nesting("SELECT 'unterminated", 1).is_ok());
    }
}
