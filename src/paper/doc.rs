//! Printable documents: the governors' report and the recovery sheet are built once as a list of
//! [`Block`]s and rendered from it as PDF ([`crate::paper::pdf`]), as self-contained HTML (inline CSS
//! and SVG, no scripts, nothing fetched) and as plain text (for tests and terminals). One model
//! keeps the three versions saying the same thing.
//!
//! Traffic lights always carry their word (OK, ATTENTION, ACTION NEEDED) as well as their colour,
//! so a page printed in black and white reads the same.

use chrono::{DateTime, Utc};

/// A traffic light.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Light {
    Green,
    Amber,
    Red,
}

impl Light {
    /// The word printed beside the colour.
    pub fn word(self) -> &'static str {
        match self {
            Light::Green => "OK",
            Light::Amber => "ATTENTION",
            Light::Red => "ACTION NEEDED",
        }
    }

    /// RGB colour.
    pub fn rgb(self) -> (u8, u8, u8) {
        match self {
            Light::Green => (0x1e, 0x8e, 0x3e),
            Light::Amber => (0xe3, 0x8d, 0x00),
            Light::Red => (0xc6, 0x28, 0x28),
        }
    }

    fn css(self) -> &'static str {
        match self {
            Light::Green => "green",
            Light::Amber => "amber",
            Light::Red => "red",
        }
    }
}

/// One line of a chart: values over time.
#[derive(Clone, Debug)]
pub struct Series {
    pub label: String,
    pub rgb: (u8, u8, u8),
    pub points: Vec<(DateTime<Utc>, f64)>,
}

/// A line chart of byte counts over time.
#[derive(Clone, Debug)]
pub struct Chart {
    pub title: String,
    pub series: Vec<Series>,
    /// Shown instead of the chart when there is nothing to draw.
    pub empty: String,
}

impl Chart {
    /// The time and value ranges of every point, when there are any.
    pub fn bounds(&self) -> Option<(DateTime<Utc>, DateTime<Utc>, f64)> {
        let all: Vec<&(DateTime<Utc>, f64)> = self.series.iter().flat_map(|s| &s.points).collect();
        let t0 = all.iter().map(|p| p.0).min()?;
        let t1 = all.iter().map(|p| p.0).max()?;
        let max = all.iter().map(|p| p.1).fold(0.0, f64::max);
        Some((t0, t1, if max > 0.0 { max } else { 1.0 }))
    }
}

/// One part of a document, in reading order.
#[derive(Clone, Debug)]
pub enum Block {
    /// The document's title and a line under it.
    Title {
        title: String,
        subtitle: String,
    },
    Heading(String),
    Subheading(String),
    Para(String),
    /// Smaller, grey text.
    Note(String),
    /// A traffic light with a short headline and a sentence of detail.
    Status {
        light: Light,
        headline: String,
        detail: String,
    },
    /// A list; items may carry a light.
    Bullets(Vec<(Option<Light>, String)>),
    /// Column widths as shares of the page width.
    Table {
        widths: Vec<f32>,
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    Chart(Chart),
    /// Shell commands, one per line, each printed after `$ ` so it can be told apart and copied.
    Commands(Vec<String>),
    /// Verbatim monospaced text (a key).
    Mono(Vec<String>),
    /// A QR code of this text, with a caption.
    Qr {
        text: String,
        caption: String,
    },
    /// Lines for signatures: one per role.
    SignOff(Vec<String>),
    PageBreak,
}

/// A titled document.
#[derive(Clone, Debug)]
pub struct Doc {
    pub title: String,
    /// Printed at the foot of every page.
    pub footer: String,
    pub blocks: Vec<Block>,
}

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

    /// The document as plain text, one block after another.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.blocks {
            text_block(&mut out, b);
        }
        out
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
            light.css(),
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
                        l.css(),
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

fn text_block(out: &mut String, b: &Block) {
    match b {
        Block::Title { title, subtitle } => {
            out.push_str(&format!("{title}\n{subtitle}\n\n"));
        }
        Block::Heading(t) => out.push_str(&format!("\n== {t} ==\n\n")),
        Block::Subheading(t) => out.push_str(&format!("-- {t} --\n")),
        Block::Para(t) | Block::Note(t) => out.push_str(&format!("{t}\n\n")),
        Block::Status {
            light,
            headline,
            detail,
        } => out.push_str(&format!("[{}] {headline}\n    {detail}\n", light.word())),
        Block::Bullets(items) => {
            for (l, t) in items {
                match l {
                    Some(l) => out.push_str(&format!("[{}] {t}\n", l.word())),
                    None => out.push_str(&format!("- {t}\n")),
                }
            }
            out.push('\n');
        }
        Block::Table { header, rows, .. } => {
            out.push_str(&format!("| {} |\n", header.join(" | ")));
            for r in rows {
                out.push_str(&format!("| {} |\n", r.join(" | ")));
            }
            out.push('\n');
        }
        Block::Chart(c) => {
            out.push_str(&format!("[chart] {}\n", c.title));
            if c.bounds().is_none() {
                out.push_str(&format!("{}\n", c.empty));
            }
            for s in &c.series {
                out.push_str(&format!("  {}: {} point(s)\n", s.label, s.points.len()));
            }
            out.push('\n');
        }
        Block::Commands(lines) => {
            for l in lines {
                out.push_str(&format!("$ {l}\n"));
            }
            out.push('\n');
        }
        Block::Mono(lines) => {
            for l in lines {
                out.push_str(&format!("    {l}\n"));
            }
            out.push('\n');
        }
        Block::Qr { caption, .. } => out.push_str(&format!("[QR code] {caption}\n\n")),
        Block::SignOff(roles) => {
            for r in roles {
                out.push_str(&format!(
                    "{r}\n  Name: ______________________\n  Signature: _________________\n  Date: ______________________\n\n"
                ));
            }
        }
        Block::PageBreak => out.push('\n'),
    }
}

/// The QR code's modules (true = dark), row by row, and its width; `None` when the text is too
/// long for a QR code.
pub fn qr_modules(text: &str) -> Option<(usize, Vec<bool>)> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let width = code.width();
    let dark = code
        .to_colors()
        .into_iter()
        .map(|c| c == qrcode::Color::Dark)
        .collect();
    Some((width, dark))
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

/// A readable byte count for chart axes and tables (`1.5 GB`).
pub fn bytes(n: f64) -> String {
    bytesize::ByteSize(n.max(0.0) as u64).to_string()
}

/// Chart geometry shared by the SVG and PDF renderers: the plot area inside a `w` by `h` box.
pub struct Plot {
    pub left: f32,
    pub top: f32,
    pub width: f32,
    pub height: f32,
}

impl Plot {
    pub fn new(w: f32, h: f32) -> Plot {
        Plot {
            left: 62.0,
            top: 10.0,
            width: w - 72.0,
            height: h - 44.0,
        }
    }

    /// Where a point goes, in the box's coordinates (y downwards).
    pub fn at(
        &self,
        t: DateTime<Utc>,
        v: f64,
        bounds: (DateTime<Utc>, DateTime<Utc>, f64),
    ) -> (f32, f32) {
        let (t0, t1, max) = bounds;
        let span = (t1 - t0).num_seconds().max(1) as f64;
        let x = if t1 == t0 {
            0.5
        } else {
            (t - t0).num_seconds() as f64 / span
        };
        let y = v / max;
        (
            self.left + self.width * x as f32,
            self.top + self.height * (1.0 - y as f32),
        )
    }
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
