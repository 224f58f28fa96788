//! `mcpsiem rules check` on the shipped pack and on broken rules: file, line and reason,
//! and a failing exit status when a rule was skipped.

use std::process::Command;

fn mcpsiem(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcpsiem")).args(args).output().expect("mcpsiem runs")
}

#[test]
fn the_shipped_rule_pack_loads_without_problems() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let out = mcpsiem(&["--set", r#"detect.lists.approved_servers=["github"]"#, "rules", "check", rules]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("0 errors, 0 unsupported, 0 warnings"), "{stdout}");
}

#[test]
fn broken_rules_are_reported_with_file_and_line_and_fail_the_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("good.yml"),
        "title: good\nlogsource: {product: mcp}\ndetection:\n  s:\n    mcp.method.name: initialize\n  condition: s\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "title: bad\nlogsource: {product: mcp}\ndetection:\n  s:\n    mcp.method.name|nosuchmodifier: x\n  condition: s\n",
    )
    .unwrap();
    let out = mcpsiem(&["rules", "check", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    let bad = dir.path().join("bad.yml");
    assert!(stdout.contains(&format!("{}:", bad.display())), "{stdout}");
    assert!(stdout.contains("nosuchmodifier"), "{stdout}");
    assert!(stdout.contains("1 detection"), "the good rule still loads: {stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 rules were skipped"));
}

#[test]
fn every_shipped_rule_passes_its_test_events() {
    let rules = concat!(env!("CARGO_MANIFEST_DIR"), "/rules");
    let out = mcpsiem(&["rules", "test", rules]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    assert!(last.ends_with(" 0 failed"), "{stdout}");
    let rules_count: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    assert!(rules_count >= 25, "the pack has at least 25 rules: {last}");
}

#[test]
fn rule_tests_fail_on_a_wrong_expectation_and_on_a_rule_without_a_close_miss() {
    let dir = tempfile::tempdir().unwrap();
    let rule = "title: Init\nid: r-init\nlogsource: {product: mcp}\ndetection:\n  s:\n    mcp.method.name: initialize\n  condition: s\n";
    std::fs::write(dir.path().join("init.yml"), rule).unwrap();
    std::fs::write(
        dir.path().join("init.tests.yml"),
        "rule: r-init\ncases:\n  - name: wrongly expects a match\n    expect: match\n    events:\n      - {mcp.method.name: tools/list}\n",
    )
    .unwrap();
    let out = mcpsiem(&["rules", "test", dir.path().to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("case `wrongly expects a match`"), "{stdout}");
    assert!(stdout.contains("the rule did not match"), "{stdout}");
    assert!(stdout.contains("no `no_match` case"), "{stdout}");
}

#[test]
fn the_rule_table_in_rules_readme_is_current() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(env!("CARGO_BIN_EXE_mcpsiem"))
        .current_dir(root)
        .args(["rules", "doc", "rules"])
        .output()
        .expect("mcpsiem runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let committed = std::fs::read_to_string(format!("{root}/rules/README.md")).unwrap_or_default();
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "rules/README.md is stale: run `mcpsiem rules doc rules > rules/README.md`"
    );
}
