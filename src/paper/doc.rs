//! Printable documents: the governors' report and the recovery sheet are built once as a list of
//! [`Block`]s and rendered from it as PDF ([`crate::paper::pdf`]), as self-contained HTML
//! ([`crate::paper::html`]) and as plain text ([`Doc::text`], here: for tests and terminals).
//! One model keeps the three versions saying the same thing; what the renderers share (a light's
//! word and colour, a chart's bounds and plot area, a QR code's modules, byte counts in words)
//! is here too.
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

impl Doc {
    /// The document as plain text, one block after another.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for b in &self.blocks {
            text_block(&mut out, b);
        }
        out
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
                out.push_str(&format!(
                    "  {}: {}\n",
                    s.label,
                    crate::plan::words::count_s(s.points.len() as u64, "point")
                ));
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
