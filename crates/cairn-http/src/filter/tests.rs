use super::*;
use serde_json::json;

/// A `/v1/health/service/:name` element.
fn health() -> Value {
    json!({
        "Node": {
            "Node": "node-1",
            "Address": "10.0.0.1",
            "Datacenter": "dc1",
            "Meta": {"env": "prod", "rack": "r1", "my-key": "dashed", "weight": "10"}
        },
        "Service": {
            "ID": "web-1",
            "Service": "web",
            "Tags": ["primary", "v2"],
            "Port": 8080,
            "Address": "",
            "Meta": {"version": "2"},
            "EnableTagOverride": false,
            "Weights": {"Passing": 10, "Warning": 1}
        },
        "Checks": [
            {"CheckID": "serfHealth", "Status": "passing", "Notes": "", "ServiceTags": []},
            {"CheckID": "service:web-1", "Status": "critical", "Notes": "", "ServiceTags": ["primary", "v2"]}
        ]
    })
}

/// A `/v1/catalog/service/:name` element.
fn catalog() -> Value {
    json!({
        "Node": "node-2",
        "Address": "10.0.0.2",
        "NodeMeta": {"env": "staging"},
        "ServiceName": "web-api",
        "ServiceTags": ["primary", "canary"],
        "ServicePort": 8443,
        "ServiceAddress": "",
        "ServiceMeta": {},
        "ServiceEnableTagOverride": true,
        "ServiceWeights": {"Passing": 1.5},
        "CreateIndex": 18446744073709551615u64,
        "Nothing": null
    })
}

fn check(expr: &str, item: &Value) -> bool {
    Filter::parse(expr)
        .unwrap_or_else(|e| panic!("{expr:?} should parse: {e}"))
        .matches(item)
}

fn assert_match(expr: &str, item: &Value, expected: bool) {
    assert_eq!(check(expr, item), expected, "filter {expr:?}");
}

fn parse_err(expr: &str) -> FilterError {
    match Filter::parse(expr) {
        Ok(f) => panic!("{expr:?} should not parse, got {f:?}"),
        Err(e) => e,
    }
}

/// Asserts the error message contains `needle` and the position is `pos`.
fn assert_err(expr: &str, needle: &str, pos: usize) {
    let e = parse_err(expr);
    assert!(
        e.message().contains(needle),
        "{expr:?}: message {:?} lacks {needle:?}",
        e.message()
    );
    assert_eq!(e.position(), pos, "{expr:?}: {e}");
}

#[test]
fn equality_on_strings_with_all_value_forms() {
    let c = catalog();
    for expr in [
        r#"ServiceName == "web-api""#,
        "ServiceName == `web-api`",
        "ServiceName == web-api",
        "ServiceName==web-api",
        "  ServiceName   ==   \"web-api\"  ",
    ] {
        assert_match(expr, &c, true);
    }
    assert_match(r#"ServiceName == "web""#, &c, false);
    assert_match(r#"ServiceName != "web""#, &c, true);
    assert_match(r#"ServiceName != "web-api""#, &c, false);
    assert_match(r#"Node == "node-2""#, &c, true);
    assert_match(r#"Address == 10.0.0.2"#, &c, true);
}

#[test]
fn string_escapes_and_raw_strings() {
    let item = json!({"S": "a\"b\\c\nd\t/é", "R": r"C:\dir\n"});
    assert_match(r#"S == "a\"b\\c\nd\t\/\u00e9""#, &item, true);
    assert_match(r#"S == "a\x22b\\c\nd\t/\U000000e9""#, &item, true);
    assert_match(r"R == `C:\dir\n`", &item, true);
    assert_match(r#"R == "C:\\dir\\n""#, &item, true);
    let bell = json!({"B": "\u{7}\u{8}\u{c}\u{b}\r"});
    assert_match(r#"B == "\a\b\f\v\r""#, &bell, true);
}

#[test]
fn numbers_and_bools_compare_by_value() {
    let c = catalog();
    assert_match("ServicePort == 8443", &c, true);
    assert_match(r#"ServicePort == "8443""#, &c, true);
    assert_match("ServicePort == 8443.0", &c, true);
    assert_match("ServicePort == 8.443e3", &c, true);
    assert_match("ServicePort == 8080", &c, false);
    assert_match("ServicePort != 8080", &c, true);
    assert_match("ServiceWeights.Passing == 1.5", &c, true);
    assert_match("CreateIndex == 18446744073709551615", &c, true);
    assert_match("CreateIndex == 18446744073709551614", &c, false);
    for t in ["true", "True", "TRUE", "t", "1", "\"true\""] {
        assert_match(&format!("ServiceEnableTagOverride == {t}"), &c, true);
    }
    assert_match("ServiceEnableTagOverride == false", &c, false);
    assert_match("ServiceEnableTagOverride != false", &c, true);
    assert_match("ServiceEnableTagOverride == yes", &c, false);
    let h = health();
    assert_match("Service.EnableTagOverride == false", &h, true);
    assert_match("Service.Port == 8080", &h, true);
    let neg = json!({"N": -3, "F": -0.25});
    assert_match("N == -3", &neg, true);
    assert_match("F == -0.25", &neg, true);
    assert_match("F == -.25", &neg, true);
}

#[test]
fn null_and_containers_never_equal_a_value() {
    let c = catalog();
    assert_match("Nothing == null", &c, false);
    assert_match("Nothing != null", &c, true);
    assert_match("ServiceTags == primary", &c, false);
    assert_match("ServiceMeta == x", &c, false);
}

#[test]
fn ordering_operators() {
    let c = catalog();
    assert_match("ServicePort > 8000", &c, true);
    assert_match("ServicePort >= 8443", &c, true);
    assert_match("ServicePort > 8443", &c, false);
    assert_match("ServicePort < 9000", &c, true);
    assert_match("ServicePort <= 8442", &c, false);
    assert_match("ServicePort<=8443", &c, true);
    assert_match("ServiceWeights.Passing < 2", &c, true);
    // Numeric strings compare numerically; others never match.
    let h = health();
    assert_match("Node.Meta.weight > 9", &h, true);
    assert_match("Node.Meta.env > 0", &h, false);
    assert_match("Node.Meta.env < 0", &h, false);
    assert_match("Missing > 0", &h, false);
    // Fan-out: any check weight...
    let item = json!({"Xs": [{"N": 1}, {"N": 5}]});
    assert_match("Xs.N > 4", &item, true);
    assert_match("Xs.N > 5", &item, false);
}

#[test]
fn contains_and_in_on_arrays_strings_and_objects() {
    let c = catalog();
    // Arrays: membership.
    assert_match("ServiceTags contains primary", &c, true);
    assert_match(r#""primary" in ServiceTags"#, &c, true);
    assert_match("primary in ServiceTags", &c, true);
    assert_match("`canary` in ServiceTags", &c, true);
    assert_match(r#""prim" in ServiceTags"#, &c, false);
    assert_match(r#""prim" not in ServiceTags"#, &c, true);
    assert_match(r#""primary" not in ServiceTags"#, &c, false);
    assert_match("ServiceTags not contains secondary", &c, true);
    assert_match("ServiceTags not contains canary", &c, false);
    // Strings: substring.
    assert_match(r#"ServiceName contains "b-a""#, &c, true);
    assert_match(r#""api" in ServiceName"#, &c, true);
    assert_match(r#"ServiceName contains "API""#, &c, false);
    // Objects: key present.
    assert_match("NodeMeta contains env", &c, true);
    assert_match("env in NodeMeta", &c, true);
    assert_match("staging in NodeMeta", &c, false);
    assert_match("NodeMeta not contains rack", &c, true);
    // Numbers in arrays compare by value; scalars other than strings never contain.
    let item = json!({"Ports": [80, 443], "N": 80});
    assert_match("443 in Ports", &item, true);
    assert_match("Ports contains 8080", &item, false);
    assert_match("N contains 80", &item, false);
    // Missing.
    assert_match("x in Missing", &c, false);
    assert_match("x not in Missing", &c, true);
    assert_match("Missing not contains x", &c, true);
    // Bare values with dots and dashes in value-first position.
    let tags = json!({"Tags": ["v1.2.3", "web-1"]});
    assert_match("v1.2.3 in Tags", &tags, true);
    assert_match("web-1 in Tags", &tags, true);
    assert_match("8443 in ServiceName", &c, false);
}

#[test]
fn is_empty_and_is_not_empty() {
    let c = catalog();
    assert_match("ServiceMeta is empty", &c, true);
    assert_match("ServiceAddress is empty", &c, true);
    assert_match("Nothing is empty", &c, true);
    assert_match("Missing is empty", &c, true);
    assert_match("Missing.Deeper.Still is empty", &c, true);
    assert_match("ServiceTags is empty", &c, false);
    assert_match("NodeMeta is empty", &c, false);
    assert_match("ServicePort is empty", &c, false);
    assert_match("ServiceEnableTagOverride is empty", &c, false);
    assert_match("ServiceMeta is not empty", &c, false);
    assert_match("ServiceTags is not empty", &c, true);
    assert_match("Missing is not empty", &c, false);
    assert_match("ServiceTags   is   not   empty", &c, true);
    assert_match("Empty is empty", &json!({"Empty": []}), true);
    // Fan-out: empty only if every element is empty.
    let h = health();
    assert_match("Checks.Notes is empty", &h, true);
    assert_match("Checks.ServiceTags is empty", &h, false);
    assert_match("Checks.ServiceTags is not empty", &h, true);
    assert_match("Checks.Status is empty", &h, false);
}

#[test]
fn matches_and_not_matches() {
    let c = catalog();
    assert_match(r#"ServiceName matches "^web-.*""#, &c, true);
    assert_match(r#"ServiceName matches "api""#, &c, true); // unanchored
    assert_match(r#"ServiceName matches "^api""#, &c, false);
    assert_match(r#"ServiceName not matches "^api""#, &c, true);
    assert_match(r#"ServiceName not matches "^web""#, &c, false);
    assert_match(r"ServiceName matches `^web-\w+$`", &c, true);
    assert_match(r#"ServiceName matches "^web-\\w+$""#, &c, true);
    assert_match(r#"ServicePort matches "^84""#, &c, true);
    assert_match("ServiceEnableTagOverride matches `^tr`", &c, true);
    assert_match("ServiceTags matches primary", &c, false); // not a scalar
    assert_match(r#"Missing matches ".*""#, &c, false);
    assert_match(r#"Missing not matches ".*""#, &c, true);
    let h = health();
    assert_match(r#"Checks.CheckID matches "^service:""#, &h, true);
    assert_match(r#"Checks.CheckID not matches "^service:""#, &h, false);
}

#[test]
fn arrays_of_objects_fan_out_with_any_semantics() {
    let h = health();
    assert_match("Checks.Status == passing", &h, true);
    assert_match("Checks.Status == critical", &h, true);
    assert_match("Checks.Status == warning", &h, false);
    assert_match("Checks.Status != warning", &h, true);
    assert_match("Checks.Status != passing", &h, false);
    assert_match("Checks.ServiceTags contains v2", &h, true);
    assert_match("v3 in Checks.ServiceTags", &h, false);
    assert_match("Checks.Missing == x", &h, false);
    assert_match("Checks.Missing is empty", &h, true);
    // Nested arrays flatten.
    let nested = json!({"A": [[{"B": 1}], [{"B": 2}, {"C": 3}]], "E": []});
    assert_match("A.B == 2", &nested, true);
    assert_match("A.C == 3", &nested, true);
    assert_match("A.B == 3", &nested, false);
    assert_match("E.X == 1", &nested, false);
    assert_match("E.X is empty", &nested, true);
    // Applying a filter to a top-level array element list.
    let all = json!([{"Status": "passing"}, {"Status": "critical"}]);
    assert_match("Status == critical", &all, true);
}

#[test]
fn maps_dotted_and_bracketed() {
    let h = health();
    assert_match(r#"Service.Meta.version == "2""#, &h, true);
    assert_match("Service.Meta.version == 2", &h, true);
    assert_match(r#"Node.Meta.env != "prod""#, &h, false);
    assert_match(r#"Node.Meta["my-key"] == dashed"#, &h, true);
    assert_match("Node.Meta[`my-key`] == dashed", &h, true);
    assert_match(r#"Node.Meta[ "my-key" ] == dashed"#, &h, true);
    assert_match(r#"Node["Meta"]["env"] == prod"#, &h, true);
    assert_match(r#"Node["Meta"].env == prod"#, &h, true);
    assert_match(r#"Node.Meta["missing"] is empty"#, &h, true);
    assert_match(r#""my-key" in Node.Meta"#, &h, true);
    assert_match(r#"Service.Weights.Passing == 10"#, &h, true);
}

#[test]
fn case_insensitive_fallback_prefers_exact_key() {
    let h = health();
    assert_match("service.service == web", &h, true);
    assert_match("SERVICE.TAGS contains primary", &h, true);
    assert_match("checks.status == passing", &h, true);
    // Bracketed keys are exact.
    assert_match(r#"Node.Meta["ENV"] == prod"#, &h, false);
    assert_match(r#"Node.Meta.ENV == prod"#, &h, true);
    let both = json!({"name": "lower", "Name": "upper"});
    assert_match("Name == upper", &both, true);
    assert_match("name == lower", &both, true);
    assert_match("Name == lower", &both, false);
}

#[test]
fn missing_fields() {
    let c = catalog();
    assert_match("Missing == x", &c, false);
    assert_match("Missing != x", &c, true);
    assert_match("Missing is empty", &c, true);
    assert_match("ServiceName.Deeper == x", &c, false);
    assert_match("ServiceName.Deeper != x", &c, true);
    assert_match("ServicePort.X is empty", &c, true);
    // Walking into a scalar root.
    assert_match("A == b", &json!("string"), false);
    assert_match("A is empty", &json!(null), true);
}

#[test]
fn boolean_operators_and_precedence() {
    let c = catalog();
    let t = "ServicePort == 8443"; // true
    let f = "ServicePort == 1"; // false
    assert_match(&format!("{t} and {t}"), &c, true);
    assert_match(&format!("{t} and {f}"), &c, false);
    assert_match(&format!("{f} or {t}"), &c, true);
    assert_match(&format!("{f} or {f}"), &c, false);
    assert_match(&format!("not {f}"), &c, true);
    assert_match(&format!("not {t}"), &c, false);
    assert_match(&format!("not not {t}"), &c, true);
    // `and` binds tighter than `or`: t or (f and f) = true; (t or f) and f = false.
    assert_match(&format!("{t} or {f} and {f}"), &c, true);
    assert_match(&format!("{f} and {f} or {t}"), &c, true);
    assert_match(&format!("({t} or {f}) and {f}"), &c, false);
    // `not` binds tighter than `and`/`or`: (not t) or t = true; not (t or t) = false.
    assert_match(&format!("not {t} or {t}"), &c, true);
    assert_match(&format!("not ({t} or {t})"), &c, false);
    assert_match(&format!("not {f} and {t}"), &c, true);
    assert_match(&format!("not ({f} and {t})"), &c, true);
    assert_match(&format!("not ({t} and {t})"), &c, false);
    // Parentheses, whitespace, chains.
    assert_match(&format!("(({t}))"), &c, true);
    assert_match(&format!("({f})or({t})"), &c, true);
    assert_match(&format!("not({f})"), &c, true);
    assert_match(&format!("{t} and {t} and {t} and {f}"), &c, false);
    assert_match(&format!("{f} or {f} or {f} or {t}"), &c, true);
    // Realistic combination from the Consul docs.
    assert_match(
        r#"NodeMeta.env != "prod" and ServicePort > 8000 and "primary" in ServiceTags"#,
        &c,
        true,
    );
    assert_match(
        r#"not (ServiceName == "x" or ServiceAddress is not empty)"#,
        &c,
        true,
    );
    let h = health();
    assert_match(
        "Service.Service == web and (Checks.Status == critical or Service.Port < 1024)",
        &h,
        true,
    );
}

#[test]
fn keywords_need_word_boundaries() {
    let item = json!({"notes": "x", "order": 1, "android": true, "isx": 1, "index": "a"});
    assert_match("notes == x", &item, true);
    assert_match("order == 1", &item, true);
    assert_match("android == true", &item, true);
    assert_match("index == a and isx == 1", &item, true);
    // Bare values may start with keywords.
    assert_match("notes != orange", &item, true);
    // A bare keyword is not a value, a quoted one is.
    assert!(Filter::parse("index == and").is_err());
    assert_match(r#"index == "and""#, &json!({"index": "and"}), true);
}

#[test]
fn parse_is_reusable_and_fromstr_works() {
    let f: Filter = "ServiceTags contains primary".parse().unwrap();
    let items = [catalog(), json!({"ServiceTags": []}), json!({})];
    let kept: Vec<bool> = items.iter().map(|i| f.matches(i)).collect();
    assert_eq!(kept, [true, false, false]);
    let cloned = f.clone();
    assert!(cloned.matches(&catalog()));
}

#[test]
fn error_cases_have_messages_and_positions() {
    assert_err("", "empty filter expression", 0);
    assert_err("   \t ", "empty filter expression", 0);
    // Parentheses.
    assert_err("(A == b", "expected ')' to close the '(' at position 0", 7);
    assert_err("A == b)", "unmatched ')'", 6);
    assert_err("()", "found ')'", 1);
    assert_err("((A == b)", "expected ')'", 9);
    // Missing value / selector / operator.
    assert_err("A ==", "expected a value after '=='", 4);
    assert_err("A == ", "expected a value after '=='", 5);
    assert_err("A != )", "expected a value after '!='", 5);
    assert_err("A == and B == c", "found keyword 'and'", 5);
    assert_err("A contains", "expected a value after 'contains'", 10);
    assert_err("A not contains", "after 'not contains'", 14);
    assert_err("== b", "expected a selector", 0);
    assert_err("A", "unexpected end of expression; expected an operator", 1);
    assert_err("A ==b and", "unexpected end of expression", 9);
    assert_err("A == b or", "unexpected end of expression", 9);
    assert_err("not", "unexpected end of expression", 3);
    assert_err("A == b c == d", "expected 'and', 'or'", 7);
    assert_err("A == b && c == d", "expected 'and', 'or'", 7);
    // Unknown operators.
    assert_err("A = b", "unknown operator '='", 2);
    assert_err("A =~ b", "unknown operator '=~'", 2);
    assert_err("A equals b", "unknown operator 'equals'", 2);
    assert_err(r#"Meta["x"] in B"#, "'in' takes the value on the left", 10);
    assert_err(
        r#"Meta["x"] not in B"#,
        "'not in' takes the value on the left",
        10,
    );
    assert_err(
        "A not equals b",
        "expected 'contains' or 'matches' after 'not'",
        6,
    );
    assert_err("A is", "expected 'empty' after 'is'", 4);
    assert_err("A is not", "expected 'empty' after 'is not'", 8);
    assert_err("A is full", "expected 'empty' after 'is'", 5);
    assert_err("A ? b", "unexpected '?'", 2);
    assert_err("A > x", "requires a numeric value", 4);
    assert_err("A > NaN", "requires a numeric value", 4);
    assert_err("A >= inf", "requires a numeric value", 5);
    // Selectors.
    assert_err(
        r#""A" == "b""#,
        "expected 'in' or 'not in' after a quoted value",
        4,
    );
    assert_err("x in", "expected a selector after 'in'", 4);
    assert_err("x in 5", "expected a selector after 'in'", 5);
    assert_err("x not in and", "found keyword 'and'", 9);
    assert_err("A. == b", "expected a field name after '.'", 2);
    assert_err(".A == b", "expected a selector", 0);
    assert_err("A..B == b", "expected a field name after '.'", 2);
    assert_err("Meta.my-key == x", "invalid character '-' in selector", 7);
    assert_err("Meta.1x == x", "expected a field name after '.'", 5);
    assert_err(
        "Meta[my] == x",
        "expected a quoted string inside '[...]'",
        5,
    );
    assert_err(
        r#"Meta["k" == x"#,
        "expected ']' to close the '[' at position 4",
        9,
    );
    assert_err("Meta[] == x", "expected a quoted string", 5);
    assert_err("and == x", "found keyword 'and'", 0);
    // Strings.
    assert_err(r#"A == "abc"#, "unterminated string", 5);
    assert_err(r#"A == "abc\"#, "unterminated string", 5);
    assert_err("A == `abc", "unterminated raw string", 5);
    assert_err(r#"A == "\q""#, r"invalid escape sequence '\q'", 6);
    assert_err(r#"A == "\u12""#, "expected 4 hex digits", 6);
    assert_err(r#"A == "\xZZ""#, "expected 2 hex digits", 6);
    assert_err(r#"A == "\xff""#, "not valid UTF-8", 6);
    assert_err(r#"A == "\ud800""#, "not a valid Unicode code point", 6);
    assert_err(r#"A == "\U00110000""#, "not a valid Unicode code point", 6);
    // Regex.
    assert_err(r#"A matches "(""#, "invalid regular expression", 10);
    assert_err(r#"A not matches "[z-a]""#, "invalid regular expression", 14);
    assert_err("A matches", "expected a value after 'matches'", 9);
    assert_err(
        r#"A matches "a{100000}{100000}""#,
        "invalid regular expression",
        10,
    );
    // Positions are in characters, not bytes.
    assert_err("é == x ==", "expected a selector", 0);
    assert_err("Ä == \"ö\" )", "expected a selector", 0);
    assert_err("A == \"ö\" )", "unmatched ')'", 9);
}

#[test]
fn error_display_includes_position_and_message() {
    let e = parse_err("A == b)");
    assert_eq!(
        e.to_string(),
        "invalid filter expression at position 6: unmatched ')'"
    );
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().contains("unmatched"));
}

#[test]
fn length_limit() {
    let clause = "ServicePort == 8443 or ";
    let mut ok = String::new();
    while ok.len() + clause.len() < MAX_EXPRESSION_LEN - 32 {
        ok.push_str(clause);
    }
    ok.push_str("ServicePort == 1");
    let pad = MAX_EXPRESSION_LEN - ok.len();
    ok.push_str(&" ".repeat(pad));
    assert_eq!(ok.len(), MAX_EXPRESSION_LEN);
    assert_match(&ok, &catalog(), true);
    ok.push(' ');
    let e = parse_err(&ok);
    assert!(e.message().contains("maximum is 4096"), "{e}");
}

#[test]
fn nesting_limit() {
    let nest = |n: usize| format!("{}A == b{}", "(".repeat(n), ")".repeat(n));
    assert!(Filter::parse(&nest(MAX_NESTING_DEPTH)).is_ok());
    let e = parse_err(&nest(MAX_NESTING_DEPTH + 1));
    assert!(e.message().contains("nested too deeply"), "{e}");
    assert_eq!(e.position(), MAX_NESTING_DEPTH);

    let nots = |n: usize| format!("{}A == b", "not ".repeat(n));
    let f = Filter::parse(&nots(MAX_NESTING_DEPTH)).unwrap();
    assert!(f.matches(&json!({"A": "b"}))); // even number of `not`s
    assert!(parse_err(&nots(MAX_NESTING_DEPTH + 1))
        .message()
        .contains("nested too deeply"));

    // Mixed: depth counts parentheses and `not`s together.
    let mixed = format!("{}A == b{}", "not (".repeat(16), ")".repeat(16));
    assert!(Filter::parse(&mixed).is_ok());
    let mixed = format!("{}A == b{}", "not (".repeat(17), ")".repeat(17));
    assert!(Filter::parse(&mixed).is_err());

    // Depth is released after each group: many sibling groups are fine.
    let siblings = vec!["((A == b))"; 100].join(" and ");
    assert!(Filter::parse(&siblings).is_ok());

    // Maximal-length inputs never overflow the stack.
    for unit in ["(", "not ", "((((not", "\"", "`", "[", "A.", "A == b and "] {
        let s = unit.repeat(MAX_EXPRESSION_LEN / unit.len());
        assert!(Filter::parse(&s).is_err(), "{unit:?}");
    }
}

/// xorshift64*: tiny deterministic PRNG so the test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_garbage_never_panics() {
    const SEED: u64 = 0x00C0_FFEE_CA11_2024;
    const ITERATIONS: usize = 30_000;
    println!("random_garbage_never_panics seed = {SEED:#x}");
    #[rustfmt::skip]
    const FRAGMENTS: &[&str] = &[
        "Service", "ServiceTags", "Checks", "Status", "Meta", "Node", ".", "[", "]", "\"",
        "`", "\\", "\\u", "\\x", "\\U", "(", ")", " ", "  ", "\t", "\n", "==", "!=", "=",
        "!", "<", "<=", ">", ">=", "~", "and", "or", "not", "in", "is", "empty", "contains",
        "matches", "passing", "x", "0", "8080", "-1", "1e9", "é", "😀", "\"a\"", "`b`",
        "Meta[\"k\"]", "*", "+", "?", "{", "}", "^", "$", "\\d", "|", "\u{0}", "-",
    ];
    // Valid expressions to mutate, so garbage also reaches the deeper
    // parser states (not just "expected a selector" at position 0).
    const SEEDS: &[&str] = &[
        r#"Service.Service == "web" and Checks.Status == passing"#,
        r#"not ("primary" in Service.Tags or Node.Meta["my-key"] is not empty)"#,
        r#"Service.Port > 8000 or Service.Meta.version matches "^2\\.\u00e9""#,
        "Checks.CheckID not matches `^serf` and x not in Service.Tags",
        r#"Service.Tags not contains "v2" or Node.Meta is empty"#,
    ];
    let items = [
        health(),
        catalog(),
        json!(null),
        json!([1, [2]]),
        json!("s"),
    ];
    let random_char = |rng: &mut Rng| {
        if rng.below(2) == 0 {
            char::from(rng.below(128) as u8)
        } else {
            char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{FFFD}')
        }
    };
    let mut rng = Rng(SEED);
    let mut parsed_ok = 0usize;
    for i in 0..ITERATIONS {
        let s = if i % 2 == 0 {
            // Concatenated fragments and arbitrary characters.
            let mut s = String::new();
            for _ in 0..1 + rng.below(24) {
                if rng.below(4) == 0 {
                    s.push(random_char(&mut rng));
                } else {
                    s.push_str(FRAGMENTS[rng.below(FRAGMENTS.len())]);
                    if rng.below(2) == 0 {
                        s.push(' ');
                    }
                }
            }
            s
        } else {
            // A valid expression with a few random edits.
            let mut chars: Vec<char> = SEEDS[rng.below(SEEDS.len())].chars().collect();
            for _ in 0..1 + rng.below(3) {
                let at = rng.below(chars.len() + 1);
                match rng.below(4) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => chars[at] = random_char(&mut rng),
                    2 => chars.truncate(at),
                    _ => {
                        let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                        chars.splice(at..at, frag.chars());
                    }
                }
            }
            chars.into_iter().collect()
        };
        match Filter::parse(&s) {
            Ok(f) => {
                parsed_ok += 1;
                for item in &items {
                    f.matches(item);
                }
            }
            Err(e) => {
                assert!(!e.message().is_empty());
                assert!(e.position() <= s.chars().count(), "{s:?}: {e}");
            }
        }
    }
    println!("random_garbage_never_panics: {parsed_ok} of {ITERATIONS} inputs parsed");
}

#[test]
fn random_valid_expressions_parse_and_evaluate() {
    const SEED: u64 = 0x05EE_D0FB_0015;
    println!("random_valid_expressions_parse_and_evaluate seed = {SEED:#x}");
    const SELECTORS: &[&str] = &[
        "Service.Service",
        "Service.Tags",
        "Checks.Status",
        "Node.Meta[\"my-key\"]",
        "Service.Port",
        "Missing.Field",
    ];
    const VALUES: &[&str] = &["web", "\"primary\"", "`passing`", "8080", "true", "-1.5"];
    fn gen(rng: &mut Rng, depth: usize) -> String {
        let sel = SELECTORS[rng.below(SELECTORS.len())];
        let val = VALUES[rng.below(VALUES.len())];
        match if depth == 0 { 0 } else { rng.below(6) } {
            0 => match rng.below(9) {
                0 => format!("{sel} == {val}"),
                1 => format!("{sel} != {val}"),
                2 => format!("{val} in {sel}"),
                3 => format!("{val} not in {sel}"),
                4 => format!("{sel} contains {val}"),
                5 => format!("{sel} is empty"),
                6 => format!("{sel} is not empty"),
                7 => format!("{sel} matches \"^w.*\""),
                _ => format!("{sel} > 10"),
            },
            1 => format!("not {}", gen(rng, depth - 1)),
            2 => format!("({})", gen(rng, depth - 1)),
            3 => format!("{} or {}", gen(rng, depth - 1), gen(rng, depth - 1)),
            _ => format!("{} and {}", gen(rng, depth - 1), gen(rng, depth - 1)),
        }
    }
    let mut rng = Rng(SEED);
    let h = health();
    for _ in 0..2_000 {
        let expr = gen(&mut rng, 4);
        let f = Filter::parse(&expr).unwrap_or_else(|e| panic!("{expr:?}: {e}"));
        // `not` is an exact complement.
        let negated = Filter::parse(&format!("not ({expr})")).unwrap();
        assert_ne!(f.matches(&h), negated.matches(&h), "{expr:?}");
    }
}
