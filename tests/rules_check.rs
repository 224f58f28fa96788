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
