//! Every backend case is run: each `pub fn name<B: Backend>() { .. }` under
//! `tests/src` must be in the list of a [`cases!`](roundtrip_tests::cases)
//! block, the list its stamping macro turns into `#[test]`s. A case defined
//! outside such a block (or in a file whose block no suite includes) fails
//! here.

use std::path::Path;

use roundtrip_tests::backend::Blocking;
use roundtrip_tests::{
    builders, cookies, dial, faults, proxies, redirects, suite, tls_faults, tls_nginx, traces,
};

/// The names of zero-argument generic cases defined in the `.rs` files under
/// `dir`, one entry per definition.
fn defined(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("tests/src is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            defined(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(&path).expect("a source file");
            for line in text.lines() {
                let line = line.trim_start();
                let Some(rest) = line
                    .strip_prefix("pub fn ")
                    .or_else(|| line.strip_prefix("fn "))
                else {
                    continue;
                };
                if let Some((name, after)) = rest.split_once("<B: Backend>()")
                    && after.trim_start().starts_with('{')
                {
                    out.push(name.to_string());
                }
            }
        }
    }
}

#[test]
fn every_case_is_stamped() {
    let mut source = Vec::new();
    defined(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut source,
    );
    let mut listed: Vec<String> = [
        suite::cases::<Blocking>(),
        redirects::cases::<Blocking>(),
        traces::cases::<Blocking>(),
        faults::cases::<Blocking>(),
        cookies::cases::<Blocking>(),
        tls_nginx::cases::<Blocking>(),
        tls_faults::cases::<Blocking>(),
        builders::cases::<Blocking>(),
        dial::cases::<Blocking>(),
        proxies::cases::<Blocking>(),
        proxies::regressions::cases::<Blocking>(),
    ]
    .concat()
    .into_iter()
    .map(|(name, _)| name.to_string())
    .collect();
    source.sort();
    listed.sort();
    let missing: Vec<&String> = source.iter().filter(|n| !listed.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "cases defined outside a `cases!` list, never run: {missing:?}"
    );
    assert_eq!(source, listed, "case definitions and stamped lists differ");
}
