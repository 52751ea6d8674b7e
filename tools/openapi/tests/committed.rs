//! The committed `docs/openapi.json` is what the code describes.

use std::path::Path;

#[test]
fn the_committed_description_is_what_the_code_generates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(openapi::PATH);
    let committed = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", openapi::PATH));
    let generated = openapi::to_json().expect("the description serialises");
    assert!(
        committed == generated,
        "{} is not what the code describes: run `cargo run -p openapi` and commit the result",
        openapi::PATH
    );
}

#[test]
fn every_route_of_the_router_is_described() {
    let document = openapi::document();
    let described: Vec<&str> = document.paths.paths.keys().map(String::as_str).collect();
    // The routes `cargo lambda watch` serves (the workspace's router).
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml"))
            .expect("the workspace manifest is readable");
    let routes: Vec<&str> = manifest
        .split("[workspace.metadata.lambda.watch.router]")
        .nth(1)
        .expect("the workspace has a router")
        .lines()
        .filter_map(|line| line.strip_prefix('"')?.split('"').next())
        .collect();
    assert!(!routes.is_empty(), "no routes read from the router");
    for route in &routes {
        assert!(described.contains(route), "{route} is not described");
    }
    for path in &described {
        assert!(routes.contains(path), "{path} is described but not routed");
    }
}
