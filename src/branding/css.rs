//! Custom CSS for white-label portals: parsed, checked and scoped on the server. Hostile input
//! is refused with a reason rather than silently altered, so the tenant sees what was wrong.
//! Allowed: style rules and `@media` blocks. Refused: `@import` and every other at-rule,
//! `expression()`, script URLs, bindings, `url()` to anything but the tenant's own assets,
//! backslash escapes (they can spell any of the above), and `<` (no `</style>` break-out).
//! Every selector is rewritten to sit under the portal's root element.

pub const MAX_CSS_BYTES: usize = 16 * 1024;
const MAX_DEPTH: usize = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CssError {
    #[error("custom CSS is limited to {MAX_CSS_BYTES} bytes")]
    TooLarge,
    #[error("custom CSS may not contain {0}")]
    Forbidden(String),
    #[error("custom CSS is malformed: {0}")]
    Malformed(&'static str),
    #[error("url() may only point to this tenant's own assets, not {0}")]
    ForeignUrl(String),
}

/// Sanitises and scopes `css` under `root` (e.g. `.gh-portal`). `own_asset` says whether a
/// `url()` target is one of this tenant's assets.
pub fn sanitize(css: &str, root: &str, own_asset: &dyn Fn(&str) -> bool) -> Result<String, CssError> {
    if css.len() > MAX_CSS_BYTES {
        return Err(CssError::TooLarge);
    }
    if let Some(c) =
        css.chars().find(|c| *c == '<' || *c == '\\' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(CssError::Forbidden(format!("the character {c:?}")));
    }
    let css = strip_comments(css)?;
    let lower = css.to_ascii_lowercase();
    for bad in ["expression(", "javascript:", "vbscript:", "behavior:", "-moz-binding", "data:"] {
        if lower.contains(bad) {
            return Err(CssError::Forbidden(format!("`{bad}`")));
        }
    }
    let mut out = String::new();
    let mut p = Parser { s: &css, i: 0 };
    p.rules(root, own_asset, 0, &mut out)?;
    Ok(out)
}

fn strip_comments(css: &str) -> Result<String, CssError> {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        let end = rest[start + 2..].find("*/").ok_or(CssError::Malformed("an unterminated comment"))?;
        out.push(' ');
        rest = &rest[start + 2 + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn rules(
        &mut self,
        root: &str,
        own: &dyn Fn(&str) -> bool,
        depth: usize,
        out: &mut String,
    ) -> Result<(), CssError> {
        loop {
            let rest = &self.s[self.i..];
            let trimmed = rest.trim_start();
            self.i += rest.len() - trimmed.len();
            if trimmed.is_empty() {
                return if depth == 0 { Ok(()) } else { Err(CssError::Malformed("an unclosed block")) };
            }
            if trimmed.starts_with('}') {
                if depth == 0 {
                    return Err(CssError::Malformed("a stray `}`"));
                }
                self.i += 1;
                return Ok(());
            }
            let open = trimmed.find('{').ok_or(CssError::Malformed("a rule without a block"))?;
            let prelude = trimmed[..open].trim();
            if prelude.contains('}') || prelude.contains(';') {
                return Err(CssError::Malformed("a selector containing `}` or `;`"));
            }
            self.i += open + 1;
            if let Some(at) = prelude.strip_prefix('@') {
                let name: String = at.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                if !name.eq_ignore_ascii_case("media") || depth + 1 >= MAX_DEPTH {
                    return Err(CssError::Forbidden(format!("the at-rule `@{name}`")));
                }
                if prelude.contains(['{', '"', '\'', '(']) && !media_query_ok(prelude) {
                    return Err(CssError::Malformed("a media query"));
                }
                out.push_str(&collapse(prelude));
                out.push_str(" {\n");
                self.rules(root, own, depth + 1, out)?;
                out.push_str("}\n");
            } else {
                if prelude.is_empty() {
                    return Err(CssError::Malformed("a rule without a selector"));
                }
                let body_end = self.s[self.i..].find('}').ok_or(CssError::Malformed("an unclosed block"))?;
                let body = &self.s[self.i..self.i + body_end];
                if body.contains('{') {
                    return Err(CssError::Malformed("a nested block inside a style rule"));
                }
                if body.contains('@') {
                    return Err(CssError::Forbidden("`@` inside declarations".into()));
                }
                check_urls(body, own)?;
                self.i += body_end + 1;
                let scoped: Vec<String> =
                    prelude.split(',').map(|sel| scope(sel.trim(), root)).collect::<Result<_, _>>()?;
                out.push_str(&scoped.join(", "));
                out.push_str(" { ");
                out.push_str(&collapse(body));
                out.push_str(" }\n");
            }
        }
    }
}

fn media_query_ok(prelude: &str) -> bool {
    prelude.chars().all(|c| c.is_ascii_alphanumeric() || " ()-:,.@".contains(c))
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Puts a selector under the portal root. `:root`, `html` and `body` become the root itself.
fn scope(sel: &str, root: &str) -> Result<String, CssError> {
    if sel.is_empty() {
        return Err(CssError::Malformed("an empty selector"));
    }
    let lower = sel.to_ascii_lowercase();
    for top in [":root", "html", "body"] {
        if let Some(rest) = lower.strip_prefix(top) {
            if rest.is_empty() || rest.starts_with([' ', '.', ':', '#', '[', '>', '+', '~']) {
                return Ok(format!("{root}{}", &sel[top.len()..]));
            }
        }
    }
    Ok(format!("{root} {}", collapse(sel)))
}

fn check_urls(body: &str, own: &dyn Fn(&str) -> bool) -> Result<(), CssError> {
    let lower = body.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("url(") {
        let start = from + pos + 4;
        let end = lower[start..].find(')').ok_or(CssError::Malformed("an unclosed url("))? + start;
        let target = body[start..end].trim().trim_matches(|c| c == '"' || c == '\'').trim();
        if !own(target) {
            return Err(CssError::ForeignUrl(target.chars().take(80).collect()));
        }
        from = end;
    }
    // `image-set("x.png")` and friends load URLs without `url(`.
    if lower.contains("image-set(") || lower.contains("src(") {
        return Err(CssError::Forbidden("image-set() and src()".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "/assets/fil_000000000000000000000001";
    fn own(u: &str) -> bool {
        u == OWN
    }
    fn s(css: &str) -> Result<String, CssError> {
        sanitize(css, ".gh-portal", &own)
    }

    #[test]
    fn ordinary_css_is_scoped_under_the_portal_root() {
        let out = s("h1, .card > p { color: #123; }\nbody { background: url('/assets/fil_000000000000000000000001') }\n@media (max-width: 600px) { .card { padding: 4px } }").unwrap();
        assert!(out.contains(".gh-portal h1, .gh-portal .card > p { color: #123; }"), "{out}");
        assert!(out.contains(".gh-portal { background: url('/assets/fil_000000000000000000000001') }"), "{out}");
        assert!(out.contains("@media (max-width: 600px) {\n.gh-portal .card { padding: 4px }"), "{out}");
    }

    #[test]
    fn hostile_css_is_refused() {
        let hostile = [
            "@import url('https://evil.test/x.css');",
            "@IMPORT 'x.css';",
            "@charset 'utf-8'; a{}",
            "@font-face { src: url(https://evil.test/f.woff) }",
            "a { width: expression(alert(1)) }",
            "a { width: EXPRESSION(alert(1)) }",
            "a { background: url(javascript:alert(1)) }",
            "a { background: url(https://evil.test/track.gif) }",
            "a { background: url(\"//evil.test/x\") }",
            "a { background: url(/assets/fil_999999999999999999999999) }",
            "a { background: url(data:image/svg+xml,<svg onload=alert(1)>) }",
            "a { background-image: image-set('https://evil.test/x.png' 1x) }",
            "</style><script>alert(1)</script>",
            "a { color: red } </style>",
            "a { content: '\\3c/style>' }",
            "a { -moz-binding: url(x.xml#xss) }",
            "a { behavior: url(x.htc) }",
            "a { color: red",
            "a { b { color: red } }",
            "} a { color: red }",
            "a { color: red } }",
            "/* unterminated",
            "@media screen { @media print { a { color: red } } }",
            "@supports (display: grid) { a { color: red } }",
            "a; b { color: red }",
            "a { color: red; @import 'x'; }",
            "a { color: red }\u{0000}",
        ];
        for css in hostile {
            assert!(s(css).is_err(), "accepted: {css}");
        }
        assert_eq!(s(&"a{}".repeat(MAX_CSS_BYTES)), Err(CssError::TooLarge));
    }

    #[test]
    fn comments_cannot_hide_an_import() {
        assert!(s("@im/**/port 'x.css';").is_err());
        assert_eq!(s("/* note */ a { color: red }").unwrap(), ".gh-portal a { color: red }\n");
    }
}
