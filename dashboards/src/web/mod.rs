//! The web dashboard's files (SPEC §9, issue 13), embedded in the binary so the dashboard needs
//! no network beyond the server: no CDN, no build step. Plain HTML, CSS and JavaScript; charts
//! are inline SVG drawn by `app.js`. The pages hold no logic the JSON API lacks: they call the
//! same `/api/v1/...` routes a script would.

/// `(content type, bytes)` of the dashboard file at `path` (`index.html`, `app.js`, `app.css`).
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "index.html" => Some((
            "text/html; charset=utf-8",
            include_bytes!("assets/index.html"),
        )),
        "app.js" => Some((
            "text/javascript; charset=utf-8",
            include_bytes!("assets/app.js"),
        )),
        "app.css" => Some(("text/css; charset=utf-8", include_bytes!("assets/app.css"))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_the_page_names_is_embedded() {
        let html = std::str::from_utf8(super::asset("index.html").unwrap().1).unwrap();
        for f in ["app.js", "app.css"] {
            assert!(html.contains(f), "{f}");
            assert!(super::asset(f).is_some(), "{f}");
        }
        // Nothing from elsewhere: the dashboard works with no network beyond the server.
        for (_, bytes) in ["index.html", "app.js", "app.css"].map(|f| super::asset(f).unwrap()) {
            // The SVG namespace is a name, not a place fetched.
            let text = std::str::from_utf8(bytes)
                .unwrap()
                .replace("'http://www.w3.org/2000/svg'", "");
            assert!(!text.contains("http://") && !text.contains("https://"));
        }
    }
}
