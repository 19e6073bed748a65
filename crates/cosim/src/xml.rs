//! A small XML reader and writer for the JUnit files `sop cosim` writes and merges: elements,
//! attributes, text, CDATA, comments and processing instructions (skipped), the five named
//! entities and numeric character references. No DTDs, no namespaces.

use std::fmt::Write as _;

/// An element: name, attributes in document order, children.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Element {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
}

/// A child of an element.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Element(Element),
    Text(String),
}

impl Element {
    /// The value of attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Sets attribute `name` (in place if present, else appended).
    pub fn set_attr(&mut self, name: &str, value: String) {
        match self.attrs.iter_mut().find(|(k, _)| k == name) {
            Some((_, v)) => *v = value,
            None => self.attrs.push((name.to_string(), value)),
        }
    }

    /// The child elements named `name`.
    pub fn elements<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter_map(move |c| match c {
            Node::Element(e) if e.name == name => Some(e),
            _ => None,
        })
    }

    /// Serializes the element at `depth` (two spaces per level): an element without
    /// children as `<a .../>`, one with only text inline, others with one child per line.
    pub fn write(&self, out: &mut String, depth: usize) {
        let pad = "  ".repeat(depth);
        let _ = write!(out, "{pad}<{}", self.name);
        for (k, v) in &self.attrs {
            let _ = write!(out, " {k}=\"{}\"", escape(v));
        }
        if self.children.is_empty() {
            out.push_str("/>\n");
        } else if self.children.iter().all(|c| matches!(c, Node::Text(_))) {
            out.push('>');
            for c in &self.children {
                if let Node::Text(t) = c {
                    out.push_str(&escape(t));
                }
            }
            let _ = writeln!(out, "</{}>", self.name);
        } else {
            out.push_str(">\n");
            for c in &self.children {
                match c {
                    Node::Element(e) => e.write(out, depth + 1),
                    Node::Text(t) => {
                        let _ = writeln!(out, "{pad}  {}", escape(t));
                    }
                }
            }
            let _ = writeln!(out, "{pad}</{}>", self.name);
        }
    }
}

/// Escapes text for XML attribute values and element content (control characters other
/// than tab and newline are dropped).
pub(crate) fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {}
            c => o.push(c),
        }
    }
    o
}

/// Parses a document and returns its root element. Whitespace-only text between elements
/// is dropped. Errors name the byte offset.
pub(crate) fn parse(doc: &str) -> Result<Element, String> {
    let mut p = Parser { s: doc, i: 0 };
    p.misc()?;
    if !p.rest().starts_with('<') {
        return Err(p.err("expected the root element"));
    }
    let root = p.element()?;
    p.misc()?;
    if p.i != doc.len() {
        return Err(p.err("content after the root element"));
    }
    Ok(root)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }

    fn err(&self, what: &str) -> String {
        format!("malformed XML at byte {}: {what}", self.i)
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }

    /// Skips `end`-terminated markup starting here.
    fn skip_past(&mut self, end: &str, what: &str) -> Result<(), String> {
        match self.rest().find(end) {
            Some(k) => {
                self.i += k + end.len();
                Ok(())
            }
            None => Err(self.err(&format!("unterminated {what}"))),
        }
    }

    /// Whitespace, comments, processing instructions (the XML declaration).
    fn misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if r.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if r.starts_with("<!") {
                return Err(self.err("DOCTYPE and other declarations are not supported"));
            } else {
                return Ok(());
            }
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let r = self.rest();
        let n = r
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '=' | '<'))
            .unwrap_or(r.len());
        if n == 0 {
            return Err(self.err("expected a name"));
        }
        self.i += n;
        Ok(r[..n].to_string())
    }

    fn element(&mut self) -> Result<Element, String> {
        self.i += 1; // '<'
        let name = self.name()?;
        let mut attrs = Vec::new();
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.starts_with("/>") {
                self.i += 2;
                return Ok(Element {
                    name,
                    attrs,
                    children: Vec::new(),
                });
            }
            if r.starts_with('>') {
                self.i += 1;
                break;
            }
            if r.is_empty() {
                return Err(self.err(&format!("unterminated tag <{name}>")));
            }
            let k = self.name()?;
            self.skip_ws();
            if !self.rest().starts_with('=') {
                return Err(self.err(&format!("attribute {k} without a value")));
            }
            self.i += 1;
            self.skip_ws();
            let q = self.rest().chars().next();
            let Some(q @ ('"' | '\'')) = q else {
                return Err(self.err(&format!("attribute {k}: expected a quoted value")));
            };
            self.i += 1;
            let r = self.rest();
            let end = r
                .find(q)
                .ok_or_else(|| self.err(&format!("attribute {k}: unterminated value")))?;
            let v = unescape(&r[..end]).map_err(|e| self.err(&e))?;
            self.i += end + 1;
            if attrs.iter().any(|(a, _): &(String, String)| *a == k) {
                return Err(self.err(&format!("attribute {k} given twice")));
            }
            attrs.push((k, v));
        }
        let mut children = Vec::new();
        let mut text = String::new();
        loop {
            let r = self.rest();
            if r.is_empty() {
                return Err(self.err(&format!("unterminated element <{name}>")));
            }
            if let Some(body) = r.strip_prefix("<![CDATA[") {
                let end = body.find("]]>").ok_or_else(|| self.err("unterminated CDATA section"))?;
                text.push_str(&body[..end]);
                self.i += 9 + end + 3;
            } else if r.starts_with("<!--") {
                self.skip_past("-->", "comment")?;
            } else if r.starts_with("<?") {
                self.skip_past("?>", "processing instruction")?;
            } else if r.starts_with("</") {
                self.i += 2;
                let close = self.name()?;
                if close != name {
                    return Err(self.err(&format!("</{close}> closes <{name}>")));
                }
                self.skip_ws();
                if !self.rest().starts_with('>') {
                    return Err(self.err(&format!("unterminated </{close}")));
                }
                self.i += 1;
                break;
            } else if r.starts_with('<') {
                flush(&mut text, &mut children);
                children.push(Node::Element(self.element()?));
            } else {
                let end = r.find('<').unwrap_or(r.len());
                text.push_str(&unescape(&r[..end]).map_err(|e| self.err(&e))?);
                self.i += end;
            }
        }
        flush(&mut text, &mut children);
        // Whitespace between elements is layout, not content.
        if children.iter().any(|c| matches!(c, Node::Element(_))) {
            children.retain(|c| !matches!(c, Node::Text(t) if t.trim().is_empty()));
        }
        Ok(Element { name, attrs, children })
    }
}

fn flush(text: &mut String, children: &mut Vec<Node>) {
    if !text.is_empty() {
        children.push(Node::Text(std::mem::take(text)));
    }
}

fn unescape(s: &str) -> Result<String, String> {
    let mut o = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(k) = rest.find('&') {
        o.push_str(&rest[..k]);
        let after = &rest[k + 1..];
        let end = after
            .find(';')
            .ok_or_else(|| format!("unterminated entity `&{}`", after.chars().take(12).collect::<String>()))?;
        let ent = &after[..end];
        let c = match ent {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x").or_else(|| ent.strip_prefix("#X")) {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| format!("unknown entity `&{ent};`"))?
            }
        };
        o.push(c);
        rest = &after[end + 1..];
    }
    o.push_str(rest);
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let doc = "<?xml version=\"1.0\"?>\n<!-- c -->\n<a x=\"1 &amp; 2\" y='&#65;'>\n  <b/>\n  <c>t &lt;u&gt;<![CDATA[<raw>]]></c>\n</a>\n";
        let e = parse(doc).unwrap();
        assert_eq!(e.attr("x"), Some("1 & 2"));
        assert_eq!(e.attr("y"), Some("A"));
        assert_eq!(e.children.len(), 2);
        let mut out = String::new();
        e.write(&mut out, 0);
        assert_eq!(
            out,
            "<a x=\"1 &amp; 2\" y=\"A\">\n  <b/>\n  <c>t &lt;u&gt;&lt;raw&gt;</c>\n</a>\n"
        );
        assert_eq!(parse(&out).unwrap(), e);
        for bad in [
            "",
            "<a>",
            "<a></b>",
            "<a x=1/>",
            "<a/><b/>",
            "<a>&nope;</a>",
            "<!DOCTYPE a><a/>",
            "<a x=\"1\" x=\"2\"/>",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
