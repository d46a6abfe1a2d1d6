//! The web client as the binary serves it: the page and its modules, each with the
//! page's content security policy, while the API keeps its strict one.

use crate::helpers::spawn_app;

const STRICT: &str = "default-src 'none'; frame-ancestors 'none'";

#[tokio::test]
async fn the_page_and_every_module_it_imports_are_served_with_the_page_csp() {
    let app = spawn_app().await;
    let page = app.get("/", None).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    for needed in [
        "script-src 'self'",
        "connect-src 'self'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(needed), "{needed} missing from {csp}");
    }
    assert!(
        !csp.contains("unsafe"),
        "no inline script, style or eval: {csp}"
    );
    let html = page.text().await.unwrap();
    // Every file the page or a module names is there, with the same policy.
    let mut files = vec!["app.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    for name in ["app.css", "icon.svg"] {
        assert!(html.contains(&format!("/web/{name}")), "page links {name}");
        files.push(name.to_owned());
    }
    while let Some(name) = files.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let res = app.get(&format!("/web/{name}"), None).await;
        assert_eq!(res.status(), 200, "/web/{name}");
        assert_eq!(res.headers()["content-security-policy"], csp.as_str());
        let body = res.text().await.unwrap();
        if name.ends_with(".js") {
            for import in body.split("from './").skip(1) {
                files.push(import.split('\'').next().unwrap().to_owned());
            }
        }
    }
    assert!(
        seen.len() >= 6,
        "page, styles, icon and the four modules: {seen:?}"
    );
}

#[tokio::test]
async fn api_answers_keep_the_strict_csp_and_unknown_files_are_404() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.headers()["content-security-policy"], STRICT);
    let missing = app.get("/web/secret.txt", None).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-security-policy"], STRICT);
}
