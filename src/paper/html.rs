//! HTML rendering of a [`Doc`]: one self-contained page, with the CSS inline, the charts and QR
//! codes as inline SVG, no scripts and nothing fetched, so that the file can be mailed or kept
//! and reads the same anywhere. The traffic lights carry their word beside the colour, as on
//! paper.

use crate::paper::doc::{Block, Chart, Doc, Light, Plot, bytes, qr_modules};

/// Escapes text for HTML.
pub fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const CSS: &str = "
body { font-family: 'DejaVu Sans', Verdana, Arial, sans-serif; color: #111; max-width: 50em;
       margin: 2em auto; padding: 0 1em; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; }
.subtitle { color: #444; margin-top: 0; }
h2 { font-size: 1.25em; border-bottom: 1px solid #999; margin-top: 1.6em; }
h3 { font-size: 1.05em; margin-bottom: 0.3em; }
.note { color: #555; font-size: 0.85em; }
.status { display: flex; align-items: flex-start; gap: 0.8em; margin: 0.6em 0; }
.dot { flex: none; width: 1.1em; height: 1.1em; border-radius: 50%; margin-top: 0.2em; }
.word { font-weight: bold; min-width: 9.5em; }
.green .dot { background: #1e8e3e; } .amber .dot { background: #e38d00; } .red .dot { background: #c62828; }
.green .word { color: #1e6e2e; } .amber .word { color: #8a5600; } .red .word { color: #a01818; }
.headline { font-weight: bold; }
ul.lights { list-style: none; padding-left: 0; }
ul.lights li { margin: 0.3em 0; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; margin: 0.5em 0; }
th, td { text-align: left; vertical-align: top; border-bottom: 1px solid #ccc; padding: 0.2em 0.4em; }
th { background: #eee; }
pre { background: #f4f4f4; border: 1px solid #ccc; padding: 0.6em; white-space: pre-wrap;
      word-break: break-all; font-size: 0.85em; }
.sign { display: grid; grid-template-columns: 9em 1fr; gap: 1.4em 0.5em; margin: 1em 0 2em; }
.line { border-bottom: 1px solid #000; height: 1.4em; }
.chart svg { width: 100%; height: auto; }
.page-break { break-after: page; }
.footer { margin-top: 3em; color: #666; font-size: 0.8em; }
@media print { body { margin: 0; max-width: none; } }
";

impl Doc {
    /// The whole document as one HTML page: inline CSS, inline SVG, no scripts.
    pub fn html(&self) -> String {
        let mut out = format!(
            "<!DOCTYPE html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
            esc(&self.title)
        );
        for b in &self.blocks {
            html_block(&mut out, b);
        }
        out.push_str(&format!(
            "<p class=\"footer\">{}</p>\n</body>\n</html>\n",
            esc(&self.footer)
        ));
        out
    }
}

/// The CSS class of a light.
fn class(light: Light) -> &'static str {
    match light {
        Light::Green => "green",
        Light::Amber => "amber",
        Light::Red => "red",
    }
}

fn html_block(out: &mut String, b: &Block) {
    match b {
        Block::Title { title, subtitle } => out.push_str(&format!(
            "<h1>{}</h1>\n<p class=\"subtitle\">{}</p>\n",
            esc(title),
            esc(subtitle)
        )),
        Block::Heading(t) => out.push_str(&format!("<h2>{}</h2>\n", esc(t))),
        Block::Subheading(t) => out.push_str(&format!("<h3>{}</h3>\n", esc(t))),
        Block::Para(t) => out.push_str(&format!("<p>{}</p>\n", esc(t))),
        Block::Note(t) => out.push_str(&format!("<p class=\"note\">{}</p>\n", esc(t))),
        Block::Status {
            light,
            headline,
            detail,
        } => out.push_str(&format!(
            "<div class=\"status {}\"><span class=\"dot\"></span><span class=\"word\">{}</span><span><span class=\"headline\">{}</span><br>{}</span></div>\n",
            class(*light),
            light.word(),
            esc(headline),
            esc(detail)
        )),
        Block::Bullets(items) => {
            out.push_str("<ul class=\"lights\">\n");
            for (light, t) in items {
                match light {
                    Some(l) => out.push_str(&format!(
                        "<li class=\"status {}\"><span class=\"dot\"></span><span class=\"word\">{}</span><span>{}</span></li>\n",
                        class(*l),
                        l.word(),
                        esc(t)
                    )),
                    None => out.push_str(&format!("<li>&bull; {}</li>\n", esc(t))),
                }
            }
            out.push_str("</ul>\n");
        }
        Block::Table {
            widths,
            header,
            rows,
        } => {
            out.push_str("<table>\n<colgroup>");
            for w in widths {
                out.push_str(&format!("<col style=\"width:{:.0}%\">", w * 100.0));
            }
            out.push_str("</colgroup>\n<tr>");
            for h in header {
                out.push_str(&format!("<th>{}</th>", esc(h)));
            }
            out.push_str("</tr>\n");
            for r in rows {
                out.push_str("<tr>");
                for c in r {
                    out.push_str(&format!("<td>{}</td>", esc(c)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        Block::Chart(c) => out.push_str(&svg_chart(c)),
        Block::Commands(lines) => {
            out.push_str("<pre class=\"commands\">");
            for l in lines {
                out.push_str(&format!("$ {}\n", esc(l)));
            }
            out.push_str("</pre>\n");
        }
        Block::Mono(lines) => out.push_str(&format!(
            "<pre class=\"key\">{}</pre>\n",
            esc(&lines.join("\n"))
        )),
        Block::Qr { text, caption } => {
            out.push_str(&format!(
                "<figure class=\"qr\">{}<figcaption>{}</figcaption></figure>\n",
                svg_qr(text),
                esc(caption)
            ));
        }
        Block::SignOff(roles) => {
            for role in roles {
                out.push_str(&format!(
                    "<h3>{}</h3>\n<div class=\"sign\"><span>Name</span><span class=\"line\"></span><span>Signature</span><span class=\"line\"></span><span>Date</span><span class=\"line\"></span></div>\n",
                    esc(role)
                ));
            }
        }
        Block::PageBreak => out.push_str("<div class=\"page-break\"></div>\n"),
    }
}

fn svg_qr(text: &str) -> String {
    let Some((w, dark)) = qr_modules(text) else {
        return "<p>(too long for a QR code)</p>".into();
    };
    let quiet = 4;
    let size = w + 2 * quiet;
    let mut out = format!(
        "<svg viewBox=\"0 0 {size} {size}\" width=\"{}\" height=\"{}\" shape-rendering=\"crispEdges\"><rect width=\"{size}\" height=\"{size}\" fill=\"#fff\"/><path fill=\"#000\" d=\"",
        size * 5,
        size * 5
    );
    for (i, d) in dark.iter().enumerate() {
        if *d {
            out.push_str(&format!("M{} {}h1v1h-1z", i % w + quiet, i / w + quiet));
        }
    }
    out.push_str("\"/></svg>");
    out
}

fn svg_chart(c: &Chart) -> String {
    let (w, h) = (600.0_f32, 220.0_f32);
    let mut out = format!(
        "<figure class=\"chart\"><figcaption><strong>{}</strong></figcaption>\n",
        esc(&c.title)
    );
    let Some(bounds) = c.bounds() else {
        out.push_str(&format!("<p>{}</p></figure>\n", esc(&c.empty)));
        return out;
    };
    let plot = Plot::new(w, h);
    out.push_str(&format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" font-family=\"DejaVu Sans, sans-serif\" font-size=\"10\">\n"
    ));
    for i in 0..=4 {
        let v = bounds.2 * f64::from(i) / 4.0;
        let (_, y) = plot.at(bounds.0, v, bounds);
        out.push_str(&format!(
            "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            plot.left,
            plot.left + plot.width,
            plot.left - 4.0,
            y + 3.0,
            esc(&bytes(v))
        ));
    }
    let base = plot.top + plot.height;
    out.push_str(&format!(
        "<line x1=\"{l}\" y1=\"{base}\" x2=\"{r}\" y2=\"{base}\" stroke=\"#333\"/><line x1=\"{l}\" y1=\"{t}\" x2=\"{l}\" y2=\"{base}\" stroke=\"#333\"/>\n",
        l = plot.left,
        r = plot.left + plot.width,
        t = plot.top
    ));
    out.push_str(&format!(
        "<text x=\"{}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
        plot.left,
        base + 13.0,
        bounds.0.format("%-d %b %Y"),
        plot.left + plot.width,
        base + 13.0,
        bounds.1.format("%-d %b %Y")
    ));
    let mut lx = plot.left;
    for s in &c.series {
        let (r, g, b) = s.rgb;
        let pts: Vec<String> = s
            .points
            .iter()
            .map(|(t, v)| {
                let (x, y) = plot.at(*t, *v, bounds);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"rgb({r},{g},{b})\" stroke-width=\"2\" points=\"{}\"/>\n",
            pts.join(" ")
        ));
        for p in &pts {
            let (x, y) = p.split_once(',').expect("x,y");
            out.push_str(&format!(
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.2\" fill=\"rgb({r},{g},{b})\"/>"
            ));
        }
        out.push_str(&format!(
            "\n<rect x=\"{lx}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"rgb({r},{g},{b})\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            h - 14.0,
            lx + 14.0,
            h - 5.0,
            esc(&s.label)
        ));
        lx += 20.0 + 6.5 * s.label.chars().count() as f32;
    }
    out.push_str("</svg></figure>\n");
    out
}
