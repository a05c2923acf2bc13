//! Recursive-descent parser from tokens to [`Expr`], with FEEL's operator precedence:
//! `if`/`for`/`some`/`every` < `or` < `and` < comparison, `between`, `in`, `instance of` <
//! `+ -` < `* /` < `**` < unary minus < path, filter and call.

use super::Error;
use super::ast::{Args, ArithOp, CmpOp, Expr, Iteration, TypeName, UnaryTest};
use super::builtins;
use super::lexer::{Tok, Token};
use super::temporal;
use super::value::Value;

/// Deepest nesting accepted; deeper input is refused instead of exhausting the stack.
const MAX_DEPTH: usize = 96;

pub(crate) fn parse(tokens: Vec<Token>) -> Result<Expr, Error> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = p.expr()?;
    match p.peek() {
        Tok::Eof => Ok(expr),
        other => Err(Error::at(
            p.col(),
            format!(
                "unexpected {} after the end of the expression",
                describe(other)
            ),
        )),
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Number(n) => format!("number {n}"),
        Tok::String(s) => format!("string {s:?}"),
        Tok::Name(n) | Tok::QuotedName(n) => format!("'{n}'"),
        Tok::Eof => "end of expression".to_owned(),
        other => format!("'{}'", symbol(other)),
    }
}

fn symbol(tok: &Tok) -> &'static str {
    match tok {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::Comma => ",",
        Tok::Colon => ":",
        Tok::Dot => ".",
        Tok::DotDot => "..",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::StarStar => "**",
        Tok::Slash => "/",
        Tok::Eq => "=",
        Tok::Ne => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::At => "@",
        _ => "?",
    }
}

const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "if",
    "then",
    "else",
    "for",
    "in",
    "return",
    "some",
    "every",
    "satisfies",
    "between",
    "instance",
    "of",
    "true",
    "false",
    "null",
    "function",
];

impl Parser {
    fn peek(&self) -> &Tok {
        &self.tokens[self.pos.min(self.tokens.len() - 1)].tok
    }

    fn peek_at(&self, offset: usize) -> &Tok {
        &self.tokens[(self.pos + offset).min(self.tokens.len() - 1)].tok
    }

    fn col(&self) -> usize {
        self.tokens[self.pos.min(self.tokens.len() - 1)].col
    }

    fn advance(&mut self) -> Tok {
        let tok = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        tok
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Tok::Name(n) if n == word)
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        if self.is_keyword(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect_keyword(&mut self, word: &str) -> Result<(), Error> {
        if self.eat_keyword(word) {
            Ok(())
        } else {
            Err(Error::at(
                self.col(),
                format!("expected '{word}' but found {}", describe(self.peek())),
            ))
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<(), Error> {
        if *self.peek() == tok {
            self.advance();
            Ok(())
        } else {
            Err(Error::at(
                self.col(),
                format!(
                    "expected '{}' but found {}",
                    symbol(&tok),
                    describe(self.peek())
                ),
            ))
        }
    }

    fn enter(&mut self) -> Result<(), Error> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            Err(Error::at(
                self.col(),
                format!("expression is nested deeper than {MAX_DEPTH} levels"),
            ))
        } else {
            Ok(())
        }
    }

    fn expr(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let result = self.expr_inner();
        self.depth -= 1;
        result
    }

    fn expr_inner(&mut self) -> Result<Expr, Error> {
        if self.eat_keyword("if") {
            let cond = self.expr()?;
            self.expect_keyword("then")?;
            let then = self.expr()?;
            self.expect_keyword("else")?;
            let otherwise = self.expr()?;
            return Ok(Expr::If(
                Box::new(cond),
                Box::new(then),
                Box::new(otherwise),
            ));
        }
        if self.eat_keyword("for") {
            let mut bindings = Vec::new();
            loop {
                let name = self.variable_name()?;
                self.expect_keyword("in")?;
                let first = self.expr()?;
                let iteration = if *self.peek() == Tok::DotDot {
                    self.advance();
                    Iteration::Numbers(first, self.expr()?)
                } else {
                    Iteration::List(first)
                };
                bindings.push((name, iteration));
                if *self.peek() == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
            self.expect_keyword("return")?;
            let body = self.expr()?;
            return Ok(Expr::For(bindings, Box::new(body)));
        }
        if self.is_keyword("some") || self.is_keyword("every") {
            let every = self.is_keyword("every");
            self.advance();
            let mut bindings = Vec::new();
            loop {
                let name = self.variable_name()?;
                self.expect_keyword("in")?;
                bindings.push((name, self.disjunction()?));
                if *self.peek() == Tok::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
            self.expect_keyword("satisfies")?;
            let condition = self.expr()?;
            return Ok(Expr::Quantified {
                every,
                bindings,
                condition: Box::new(condition),
            });
        }
        if self.is_keyword("function") {
            return Err(Error::at(
                self.col(),
                "function definitions are not supported",
            ));
        }
        self.disjunction()
    }

    fn variable_name(&mut self) -> Result<String, Error> {
        let col = self.col();
        match self.advance() {
            Tok::Name(n) if !KEYWORDS.contains(&n.as_str()) => Ok(n),
            Tok::QuotedName(n) => Ok(n),
            other => Err(Error::at(
                col,
                format!("expected a variable name but found {}", describe(&other)),
            )),
        }
    }

    fn disjunction(&mut self) -> Result<Expr, Error> {
        let mut left = self.conjunction()?;
        while self.eat_keyword("or") {
            let right = self.conjunction()?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn conjunction(&mut self) -> Result<Expr, Error> {
        let mut left = self.comparison()?;
        while self.eat_keyword("and") {
            let right = self.comparison()?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, Error> {
        let left = self.additive()?;
        let op = match self.peek() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            let right = self.additive()?;
            return Ok(Expr::Compare(op, Box::new(left), Box::new(right)));
        }
        if self.eat_keyword("between") {
            let low = self.additive()?;
            self.expect_keyword("and")?;
            let high = self.additive()?;
            return Ok(Expr::Between(Box::new(left), Box::new(low), Box::new(high)));
        }
        if self.eat_keyword("in") {
            let tests = self.unary_tests()?;
            return Ok(Expr::In(Box::new(left), tests));
        }
        if self.is_keyword("instance") && matches!(self.peek_at(1), Tok::Name(n) if n == "of") {
            self.advance();
            self.advance();
            let col = self.col();
            // Type names have spaces (`date and time`): take the longest run that names a type.
            let mut words = Vec::new();
            while let Tok::Name(n) = self.peek_at(words.len()) {
                words.push(n.clone());
                if words.len() == 4 {
                    break;
                }
            }
            let found = (1..=words.len())
                .rev()
                .find_map(|k| TypeName::parse(&words[..k].join(" ")).map(|ty| (k, ty)));
            let Some((k, ty)) = found else {
                return Err(Error::at(
                    col,
                    format!(
                        "unknown type '{}' after 'instance of'",
                        words.first().map_or("", |w| w.as_str())
                    ),
                ));
            };
            self.pos += k;
            return Ok(Expr::InstanceOf(Box::new(left), ty));
        }
        Ok(left)
    }

    fn unary_tests(&mut self) -> Result<Vec<UnaryTest>, Error> {
        // `x in (1, 2, > 5)` is a list of tests; `x in (1..5)` and `x in (y)` are one test.
        if *self.peek() == Tok::LParen {
            let save = self.pos;
            self.advance();
            let first = self.unary_test()?;
            let is_list = *self.peek() == Tok::Comma
                || (*self.peek() == Tok::RParen && matches!(first, UnaryTest::Compare(..)));
            if is_list {
                let mut tests = vec![first];
                while *self.peek() == Tok::Comma {
                    self.advance();
                    tests.push(self.unary_test()?);
                }
                self.expect(Tok::RParen)?;
                return Ok(tests);
            }
            self.pos = save;
        }
        Ok(vec![self.unary_test()?])
    }

    fn unary_test(&mut self) -> Result<UnaryTest, Error> {
        let op = match self.peek() {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        if let Some(op) = op {
            self.advance();
            return Ok(UnaryTest::Compare(op, self.additive()?));
        }
        Ok(UnaryTest::Value(self.additive()?))
    }

    fn additive(&mut self) -> Result<Expr, Error> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.multiplicative()?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, Error> {
        let mut left = self.power()?;
        loop {
            let op = match self.peek() {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                _ => return Ok(left),
            };
            self.advance();
            let right = self.power()?;
            left = Expr::Arith(op, Box::new(left), Box::new(right));
        }
    }

    fn power(&mut self) -> Result<Expr, Error> {
        let mut left = self.unary()?;
        while *self.peek() == Tok::StarStar {
            self.advance();
            let right = self.unary()?;
            left = Expr::Arith(ArithOp::Pow, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, Error> {
        if *self.peek() == Tok::Minus {
            self.advance();
            self.enter()?;
            let inner = self.unary();
            self.depth -= 1;
            return Ok(match inner? {
                Expr::Literal(Value::Number(n)) => Expr::Literal(Value::Number(-n)),
                other => Expr::Negate(Box::new(other)),
            });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, Error> {
        let mut expr = self.primary()?;
        loop {
            match self.peek() {
                Tok::Dot => {
                    self.advance();
                    let col = self.col();
                    let name = match self.advance() {
                        Tok::Name(n) | Tok::QuotedName(n) => n,
                        other => {
                            return Err(Error::at(
                                col,
                                format!("expected a name after '.' but found {}", describe(&other)),
                            ));
                        }
                    };
                    expr = Expr::Path(Box::new(expr), name);
                }
                Tok::LBracket => {
                    self.advance();
                    let filter = self.expr()?;
                    self.expect(Tok::RBracket)?;
                    expr = Expr::Filter(Box::new(expr), Box::new(filter));
                }
                _ => return Ok(expr),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, Error> {
        self.enter()?;
        let result = self.primary_inner();
        self.depth -= 1;
        result
    }

    fn primary_inner(&mut self) -> Result<Expr, Error> {
        let col = self.col();
        match self.peek().clone() {
            Tok::Number(n) => {
                self.advance();
                Ok(Expr::Literal(Value::Number(n)))
            }
            Tok::String(s) => {
                self.advance();
                Ok(Expr::Literal(Value::String(s)))
            }
            Tok::At => {
                self.advance();
                let col = self.col();
                match self.advance() {
                    Tok::String(s) => {
                        temporal::parse_literal(&s)
                            .map(Expr::Literal)
                            .ok_or_else(|| {
                                Error::at(col, format!("@{s:?} is not a date, time or duration"))
                            })
                    }
                    other => Err(Error::at(
                        col,
                        format!("expected a string after '@' but found {}", describe(&other)),
                    )),
                }
            }
            Tok::LParen => {
                self.advance();
                let inner = self.expr()?;
                if *self.peek() == Tok::DotDot {
                    return self.range_rest(Some(inner), false);
                }
                self.expect(Tok::RParen)?;
                Ok(inner)
            }
            Tok::RBracket => {
                // `]a..b]`: a range whose start is excluded.
                self.advance();
                let start = self.expr()?;
                if *self.peek() != Tok::DotDot {
                    return Err(Error::at(self.col(), "expected '..' in range"));
                }
                self.range_rest(Some(start), false)
            }
            Tok::LBracket => {
                self.advance();
                if *self.peek() == Tok::RBracket {
                    self.advance();
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                if *self.peek() == Tok::DotDot {
                    return self.range_rest(Some(first), true);
                }
                let mut items = vec![first];
                while *self.peek() == Tok::Comma {
                    self.advance();
                    items.push(self.expr()?);
                }
                self.expect(Tok::RBracket)?;
                Ok(Expr::List(items))
            }
            Tok::LBrace => self.context(),
            Tok::QuotedName(n) => {
                self.advance();
                Ok(Expr::Name(n))
            }
            Tok::Name(n) => self.name_or_call(n, col),
            other => Err(Error::at(
                col,
                format!("expected a value but found {}", describe(&other)),
            )),
        }
    }

    /// After `start` and the `..` that follows it: parses the end and its bracket.
    fn range_rest(&mut self, start: Option<Expr>, start_closed: bool) -> Result<Expr, Error> {
        self.expect(Tok::DotDot)?;
        let end = self.expr()?;
        let col = self.col();
        let end_closed = match self.advance() {
            Tok::RBracket => true,
            Tok::RParen | Tok::LBracket => false,
            other => {
                return Err(Error::at(
                    col,
                    format!(
                        "expected ']', ')' or '[' to close the range but found {}",
                        describe(&other)
                    ),
                ));
            }
        };
        Ok(Expr::Range {
            start: start.map(Box::new),
            start_closed,
            end: Some(Box::new(end)),
            end_closed,
        })
    }

    fn context(&mut self) -> Result<Expr, Error> {
        self.expect(Tok::LBrace)?;
        let mut entries = Vec::new();
        if *self.peek() == Tok::RBrace {
            self.advance();
            return Ok(Expr::Context(entries));
        }
        loop {
            let col = self.col();
            let key = match self.advance() {
                Tok::String(s) | Tok::QuotedName(s) => s,
                Tok::Name(first) => {
                    let mut words = vec![first];
                    while let Tok::Name(n) = self.peek() {
                        words.push(n.clone());
                        self.advance();
                    }
                    words.join(" ")
                }
                other => {
                    return Err(Error::at(
                        col,
                        format!("expected a context key but found {}", describe(&other)),
                    ));
                }
            };
            self.expect(Tok::Colon)?;
            let value = self.expr()?;
            entries.push((key, value));
            match self.advance() {
                Tok::Comma => continue,
                Tok::RBrace => return Ok(Expr::Context(entries)),
                other => {
                    return Err(Error::at(
                        self.col(),
                        format!(
                            "expected ',' or '}}' in context but found {}",
                            describe(&other)
                        ),
                    ));
                }
            }
        }
    }

    fn name_or_call(&mut self, first: String, col: usize) -> Result<Expr, Error> {
        match first.as_str() {
            "true" => {
                self.advance();
                return Ok(Expr::Literal(Value::Bool(true)));
            }
            "false" => {
                self.advance();
                return Ok(Expr::Literal(Value::Bool(false)));
            }
            "null" => {
                self.advance();
                return Ok(Expr::Literal(Value::Null));
            }
            _ => {}
        }
        // Built-in names have spaces (`string length`, `date and time`): take the longest run
        // of name tokens that names a built-in and is followed by '('.
        for words in (1..=builtins::MAX_NAME_WORDS).rev() {
            let mut parts = Vec::with_capacity(words);
            for k in 0..words {
                match self.peek_at(k) {
                    Tok::Name(n) => parts.push(n.as_str()),
                    _ => break,
                }
            }
            if parts.len() != words || *self.peek_at(words) != Tok::LParen {
                continue;
            }
            let name = parts.join(" ");
            if let Some(func) = builtins::lookup(&name) {
                self.pos += words + 1;
                let args = self.args()?;
                return Ok(Expr::Call { func, args, col });
            }
            if words == 1 {
                return Err(Error::at(col, format!("unknown function '{name}'")));
            }
        }
        if KEYWORDS.contains(&first.as_str()) {
            return Err(Error::at(
                col,
                format!("expected a value but found '{first}'"),
            ));
        }
        self.advance();
        Ok(Expr::Name(first))
    }

    /// Arguments after the opening '(' up to and including ')'.
    fn args(&mut self) -> Result<Args, Error> {
        if *self.peek() == Tok::RParen {
            self.advance();
            return Ok(Args::Positional(Vec::new()));
        }
        if self.named_arg_ahead() {
            let mut named = Vec::new();
            loop {
                let mut words = Vec::new();
                while let Tok::Name(n) = self.peek() {
                    words.push(n.clone());
                    self.advance();
                }
                self.expect(Tok::Colon)?;
                named.push((words.join(" "), self.expr()?));
                match self.advance() {
                    Tok::Comma => continue,
                    Tok::RParen => return Ok(Args::Named(named)),
                    other => {
                        return Err(Error::at(
                            self.col(),
                            format!("expected ',' or ')' but found {}", describe(&other)),
                        ));
                    }
                }
            }
        }
        let mut positional = Vec::new();
        loop {
            positional.push(self.expr()?);
            let col = self.col();
            match self.advance() {
                Tok::Comma => continue,
                Tok::RParen => return Ok(Args::Positional(positional)),
                other => {
                    return Err(Error::at(
                        col,
                        format!(
                            "expected ',' or ')' in the arguments but found {}",
                            describe(&other)
                        ),
                    ));
                }
            }
        }
    }

    fn named_arg_ahead(&self) -> bool {
        let mut k = 0;
        while let Tok::Name(_) = self.peek_at(k) {
            k += 1;
        }
        k > 0 && *self.peek_at(k) == Tok::Colon
    }
}
