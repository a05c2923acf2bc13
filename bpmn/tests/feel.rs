//! FEEL conformance: each case is an expression, the variables it sees, and what it must give.

#![allow(clippy::unwrap_used)]

use flowmesh_bpmn::feel::{self, Expression, Value};
use jiff::Timestamp;
use serde_json::json;

fn now() -> Timestamp {
    "2024-03-15T10:30:00Z".parse().unwrap()
}

fn vars() -> feel::Context {
    match Value::from_json(&json!({
        "order": {
            "orderId": "o-4711",
            "totalSum": 99.95,
            "customer": {"name": "Ada", "address": "Main St 1"},
            "items": [
                {"articleId": "a1", "amount": 2, "price": 10.5},
                {"articleId": "a2", "amount": 7, "price": 1.25},
                {"articleId": "a3", "amount": 1, "price": 100}
            ]
        },
        "x": 5,
        "name": "flowmesh",
        "flag": true,
        "nothing": null,
        "tags": ["a", "b", "c"],
        "day": "2024-02-29"
    })) {
        Value::Context(c) => c,
        _ => unreachable!(),
    }
}

/// Evaluates and renders the result as FEEL would print it (strings quoted inside lists).
fn eval(src: &str) -> String {
    let v = feel::evaluate(src, &vars(), now()).unwrap_or_else(|e| panic!("{src}: {e}"));
    match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

fn cases(table: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (src, want) in table {
        let got = eval(src);
        if got != *want {
            failures.push(format!("{src}\n    want {want}\n    got  {got}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn literals() {
    cases(&[
        ("1", "1"),
        ("-2.50", "-2.5"),
        ("\"hi\"", "\"hi\""),
        ("true", "true"),
        ("null", "null"),
        ("[1, 2, 3]", "[1, 2, 3]"),
        ("{a: 1, \"b c\": 2}", "{a:1, b c:2}"),
        ("{a: 1, b: a + 1}", "{a:1, b:2}"),
        ("[]", "[]"),
        ("1e3", "1000"),
    ]);
}

#[test]
fn decimal_arithmetic_has_no_float_surprises() {
    cases(&[
        ("0.1 + 0.2", "0.3"),
        ("0.1 + 0.2 = 0.3", "true"),
        ("1 / 3 * 3 = 1", "false"),
        ("10 / 4", "2.5"),
        ("2 ** 10", "1024"),
        ("7 - 10", "-3"),
        ("-x", "-5"),
        ("1 / 0", "null"),
        ("\"a\" + 1", "null"),
        ("\"fl\" + \"ow\"", "\"flow\""),
        ("order.totalSum * 2", "199.9"),
    ]);
}

#[test]
fn paths_and_filters() {
    cases(&[
        ("order.orderId", "\"o-4711\""),
        ("order.customer.name", "\"Ada\""),
        ("order.items[1].amount", "2"),
        ("order.items[-1].articleId", "\"a3\""),
        ("order.items[amount > 5].articleId", "[\"a2\"]"),
        (
            "order.items[item.price >= 10].articleId",
            "[\"a1\", \"a3\"]",
        ),
        ("order.items.amount", "[2, 7, 1]"),
        ("order.missing", "null"),
        ("order.items[5]", "null"),
        ("unknownVariable", "null"),
        ("unknownVariable.field", "null"),
        ("tags[2]", "\"b\""),
        ("[1,2,3,4][item > 2]", "[3, 4]"),
    ]);
}

#[test]
fn comparisons_and_logic() {
    cases(&[
        ("x > 3", "true"),
        ("x >= 5 and x <= 5", "true"),
        ("x = 5.0", "true"),
        ("x != 5", "false"),
        ("name = \"flowmesh\"", "true"),
        ("nothing = null", "true"),
        ("nothing > 1", "null"),
        ("flag and x > 10", "false"),
        ("false and nothing", "false"),
        ("true or nothing", "true"),
        ("true and nothing", "null"),
        ("not(flag)", "false"),
        ("not(nothing)", "null"),
        ("x between 1 and 10", "true"),
        ("x between 6 and 10", "false"),
        ("x in [1..5]", "true"),
        ("x in [1..5)", "false"),
        ("x in ]4..10]", "true"),
        ("x in (1, 2, 5)", "true"),
        ("x in (> 3)", "true"),
        ("x in (< 3, > 4)", "true"),
        ("\"b\" in tags", "true"),
        ("\"z\" in [\"a\", \"b\"]", "false"),
        ("x instance of number", "true"),
        ("name instance of string", "true"),
        ("@\"2024-01-01\" instance of date", "true"),
        ("now() instance of date and time", "true"),
    ]);
}

#[test]
fn conditionals_and_iteration() {
    cases(&[
        ("if x > 3 then \"big\" else \"small\"", "\"big\""),
        ("if nothing then 1 else 2", "2"),
        ("for i in [1, 2, 3] return i * 2", "[2, 4, 6]"),
        ("for i in 1..3 return i", "[1, 2, 3]"),
        ("for i in 3..1 return i", "[3, 2, 1]"),
        (
            "for i in [1, 2], j in [10, 20] return i + j",
            "[11, 21, 12, 22]",
        ),
        (
            "for it in order.items return it.amount * it.price",
            "[21, 8.75, 100]",
        ),
        ("some i in order.items satisfies i.amount > 5", "true"),
        ("every i in order.items satisfies i.amount > 5", "false"),
        ("every t in tags satisfies string length(t) = 1", "true"),
        ("some t in [] satisfies t", "false"),
    ]);
}

#[test]
fn string_functions() {
    cases(&[
        ("string length(name)", "8"),
        ("substring(name, 5)", "\"mesh\""),
        ("substring(name, 1, 4)", "\"flow\""),
        ("substring(name, -4, 2)", "\"me\""),
        (
            "substring(string: name, start position: 5, length: 2)",
            "\"me\"",
        ),
        ("upper case(name)", "\"FLOWMESH\""),
        ("lower case(\"ABC\")", "\"abc\""),
        ("contains(name, \"mesh\")", "true"),
        ("starts with(name, \"flow\")", "true"),
        ("ends with(name, \"flow\")", "false"),
        ("matches(\"o-4711\", \"^o-[0-9]+$\")", "true"),
        ("matches(\"ABC\", \"abc\", \"i\")", "true"),
        ("replace(\"a-b-c\", \"-\", \"+\")", "\"a+b+c\""),
        ("split(\"a,b,,c\", \",\")", "[\"a\", \"b\", \"\", \"c\"]"),
        ("string join(tags, \", \")", "\"a, b, c\""),
        ("string join(tags)", "\"abc\""),
        ("string join(tags, \"-\", \"[\", \"]\")", "\"[a-b-c]\""),
        ("substring before(\"foo@bar\", \"@\")", "\"foo\""),
        ("substring after(\"foo@bar\", \"@\")", "\"bar\""),
        ("trim(\"  x  \")", "\"x\""),
        ("string(1.50)", "\"1.5\""),
        ("string(true)", "\"true\""),
        ("string(@\"2024-01-02\")", "\"2024-01-02\""),
    ]);
}

#[test]
fn list_functions() {
    cases(&[
        ("count(order.items)", "3"),
        ("sum(order.items.amount)", "10"),
        ("sum(1, 2, 3)", "6"),
        ("min([3, 1, 2])", "1"),
        ("max(3, 1, 2)", "3"),
        ("max([\"a\", \"c\", \"b\"])", "\"c\""),
        ("mean([1, 2, 3, 4])", "2.5"),
        ("median([5, 1, 3])", "3"),
        ("product([2, 3, 4])", "24"),
        ("list contains(tags, \"b\")", "true"),
        ("append(tags, \"d\")", "[\"a\", \"b\", \"c\", \"d\"]"),
        ("concatenate([1], [2, 3])", "[1, 2, 3]"),
        ("distinct values([1, 2, 1, 3, 2])", "[1, 2, 3]"),
        ("flatten([1, [2, [3, 4]]])", "[1, 2, 3, 4]"),
        ("reverse([1, 2, 3])", "[3, 2, 1]"),
        ("index of([1, 2, 1], 1)", "[1, 3]"),
        ("sublist([1, 2, 3, 4], 2, 2)", "[2, 3]"),
        ("insert before([1, 3], 2, 2)", "[1, 2, 3]"),
        ("remove([1, 2, 3], 2)", "[1, 3]"),
        ("union([1, 2], [2, 3])", "[1, 2, 3]"),
        ("all([true, true])", "true"),
        ("any([false, true])", "true"),
        ("is empty([])", "true"),
        ("sum([])", "0"),
        ("mean([])", "null"),
        ("count(nothing)", "null"),
    ]);
}

#[test]
fn numeric_functions() {
    cases(&[
        ("decimal(1/3, 2)", "0.33"),
        ("decimal(2.5, 0)", "2"),
        ("floor(1.7)", "1"),
        ("floor(-1.5)", "-2"),
        ("ceiling(1.2)", "2"),
        ("floor(1.567, 2)", "1.56"),
        ("round half up(2.5, 0)", "3"),
        ("round up(1.21, 1)", "1.3"),
        ("round down(1.29, 1)", "1.2"),
        ("abs(-3)", "3"),
        ("modulo(12, 5)", "2"),
        ("modulo(-12, 5)", "3"),
        ("modulo(12, -5)", "-3"),
        ("number(\"1,200.5\", \",\", \".\")", "1200.5"),
        ("number(\"42\")", "42"),
        ("number(\"x\")", "null"),
        ("odd(5)", "true"),
        ("even(5)", "false"),
        ("sqrt(16)", "4"),
    ]);
}

#[test]
fn temporal_values() {
    cases(&[
        ("date(\"2024-01-31\")", "2024-01-31"),
        ("date(2024, 2, 29)", "2024-02-29"),
        ("date(day) + duration(\"P1D\")", "2024-03-01"),
        ("date(\"2024-01-31\") + duration(\"P1M\")", "2024-02-29"),
        ("date(\"2024-03-01\") - date(\"2024-02-01\")", "P29D"),
        ("duration(\"PT90M\")", "PT1H30M"),
        ("duration(\"P1Y2M\")", "P1Y2M"),
        ("duration(\"P2D\") * 2", "P4D"),
        ("duration(\"PT1H\") / duration(\"PT15M\")", "4"),
        (
            "date and time(\"2024-01-01T10:00:00Z\") + duration(\"PT1H\")",
            "2024-01-01T11:00:00Z",
        ),
        (
            "date and time(\"2024-01-01T12:00:00+02:00\") = date and time(\"2024-01-01T10:00:00Z\")",
            "true",
        ),
        (
            "date and time(\"2024-01-01T10:00:00Z\") < date and time(\"2024-01-01T10:00:01Z\")",
            "true",
        ),
        (
            "@\"2024-01-01T10:00:00Z\" - @\"2024-01-01T08:30:00Z\"",
            "PT1H30M",
        ),
        (
            "date and time(date(\"2024-05-01\"), time(\"08:00:00Z\"))",
            "2024-05-01T08:00:00Z",
        ),
        ("now()", "2024-03-15T10:30:00Z"),
        ("today()", "2024-03-15"),
        ("now() > date and time(\"2024-01-01T00:00:00Z\")", "true"),
        ("date(\"2024-03-15\").year", "2024"),
        ("date(\"2024-03-15\").weekday", "5"),
        ("@\"2024-03-15T10:30:00Z\".hour", "10"),
        ("duration(\"P2DT3H\").days", "2"),
        ("day of week(date(\"2024-03-15\"))", "\"Friday\""),
        ("month of year(date(\"2024-03-15\"))", "\"March\""),
        (
            "years and months duration(date(\"2020-01-15\"), date(\"2021-03-14\"))",
            "P1Y1M",
        ),
        ("time(\"10:30:00\") + duration(\"PT45M\")", "11:15:00"),
        ("date(\"not a date\")", "null"),
    ]);
}

#[test]
fn context_functions() {
    cases(&[
        ("get value({a: 1}, \"a\")", "1"),
        ("get entries({a: 1})", "[{key:\"a\", value:1}]"),
        ("context put({a: 1}, \"b\", 2)", "{a:1, b:2}"),
        ("context merge([{a: 1}, {b: 2}])", "{a:1, b:2}"),
        ("get or else(nothing, \"default\")", "\"default\""),
        ("is defined(x)", "true"),
    ]);
}

#[test]
fn syntax_errors_say_where() {
    for (src, col, fragment) in [
        ("x +", 4, "expected a value"),
        ("(1 + 2", 7, "expected ')'"),
        ("foo(1)", 1, "unknown function 'foo'"),
        ("substring(\"a\")", 1, "needs at least 2"),
        ("\"unclosed", 1, "not closed"),
        ("x = = 1", 5, "expected a value"),
        ("if x then 1", 12, "expected 'else'"),
        (
            "substring(text: \"a\", start position: 1)",
            1,
            "no parameter 'text'",
        ),
    ] {
        let err = Expression::parse(src).expect_err(src);
        assert_eq!(err.column, col, "{src}: {err}");
        assert!(err.message.contains(fragment), "{src}: {err}");
    }
}

#[test]
fn evaluation_errors_are_errors_not_panics() {
    let err = feel::evaluate("matches(\"a\", \"(\")", &vars(), now()).unwrap_err();
    assert!(err.message.contains("invalid regular expression"), "{err}");
    let err = feel::evaluate("for i in 1..100000000 return i", &vars(), now()).unwrap_err();
    assert!(err.message.contains("more than"), "{err}");
}

#[test]
fn hostile_nesting_is_refused() {
    let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
    let err = Expression::parse(&deep).unwrap_err();
    assert!(err.message.contains("nested deeper"), "{err}");
    let deep_minus = "-".repeat(10_000) + "1";
    assert!(Expression::parse(&deep_minus).is_err());
}

#[test]
fn warnings_explain_nulls() {
    let e = Expression::parse("amount > 10").unwrap();
    let r = e.evaluate(&vars(), now()).unwrap();
    assert_eq!(r.value, Value::Null);
    assert_eq!(
        r.warnings,
        vec!["no variable found with name 'amount'".to_owned()]
    );
}

mod properties {
    use flowmesh_bpmn::feel::Expression;
    use proptest::prelude::*;

    /// Fragments FEEL is made of, so random expressions reach deep into the parser.
    fn fragment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "x",
            "order",
            ".",
            "items",
            "[",
            "]",
            "(",
            ")",
            "{",
            "}",
            ":",
            ",",
            "1",
            "0.5",
            "\"s\"",
            "+",
            "-",
            "*",
            "/",
            "**",
            "=",
            "!=",
            "<",
            ">=",
            " and ",
            " or ",
            "not(",
            "if ",
            " then ",
            " else ",
            "for i in ",
            " return ",
            "some ",
            "every ",
            " satisfies ",
            " in ",
            " between ",
            "..",
            "@\"2024-01-01\"",
            "null",
            "true",
            "count(",
            "sum(",
            "substring(",
            "date and time(",
            "duration(",
            "string length(",
            "`a b`",
            " instance of ",
            "number",
            "item",
            "?",
        ])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn any_text_compiles_or_is_refused_and_evaluation_ends(parts in proptest::collection::vec(fragment(), 0..24)) {
            let source: String = parts.concat();
            if let Ok(expr) = Expression::parse(&source) {
                let _ = expr.evaluate(&super::vars(), super::now());
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(source in "\\PC{0,64}") {
            if let Ok(expr) = Expression::parse(&source) {
                let _ = expr.evaluate(&super::vars(), super::now());
            }
        }
    }
}
