//! PDF rendering of a [`Doc`]: A4 pages laid out here (line breaking, tables, charts, QR codes)
//! and written by the `krilla` crate, with the DejaVu fonts embedded (subset), so the file looks
//! the same on every machine and its text can be searched and copied.
//!
//! Layout is a first pass that places every piece on a page as a `Mark`; the second pass
//! draws them, when the page count is known for the "page N of M" footer.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke};
use krilla::text::{Font, TextDirection};

use crate::paper::doc::{Block, Chart, Doc, Light, Plot, bytes, qr_modules};

const REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");
const MONO: &[u8] = include_bytes!("../../assets/fonts/DejaVuSansMono.ttf");

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 48.0;
const BOTTOM: f32 = PAGE_H - 56.0;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;
const INK: Rgb = (0x11, 0x11, 0x11);
const GREY: Rgb = (0x55, 0x55, 0x55);
const RULE: Rgb = (0xbb, 0xbb, 0xbb);

type Rgb = (u8, u8, u8);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Face {
    Regular,
    Bold,
    Mono,
}

/// One thing drawn on a page; y grows downwards, text is placed by its baseline.
#[derive(Clone, Debug)]
enum Mark {
    Text {
        x: f32,
        y: f32,
        face: Face,
        size: f32,
        rgb: Rgb,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        rgb: Rgb,
    },
    Circle {
        x: f32,
        y: f32,
        r: f32,
        rgb: Rgb,
    },
    Line {
        points: Vec<(f32, f32)>,
        width: f32,
        rgb: Rgb,
    },
}

/// Advance widths of the embedded fonts, for line breaking.
struct Metrics {
    faces: [ttf_parser::Face<'static>; 3],
}

impl Metrics {
    fn new() -> Metrics {
        let parse = |data: &'static [u8]| ttf_parser::Face::parse(data, 0).expect("embedded font");
        Metrics {
            faces: [parse(REGULAR), parse(BOLD), parse(MONO)],
        }
    }

    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let f = &self.faces[face as usize];
        let units: u32 = text
            .chars()
            .map(|c| {
                f.glyph_index(c)
                    .and_then(|g| f.glyph_hor_advance(g))
                    .map_or(600, u32::from)
            })
            .sum();
        units as f32 * size / f32::from(f.units_per_em())
    }

    /// Breaks text into lines no wider than `width`, at spaces; a word longer than a line is
    /// broken where it must be.
    fn wrap(&self, face: Face, size: f32, text: &str, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.split('\n') {
            let mut line = String::new();
            for word in para.split(' ') {
                let candidate = if line.is_empty() {
                    word.to_string()
                } else {
                    format!("{line} {word}")
                };
                if self.width(face, size, &candidate) <= width || line.is_empty() {
                    line = candidate;
                } else {
                    lines.push(std::mem::take(&mut line));
                    line = word.to_string();
                }
                while self.width(face, size, &line) > width && line.chars().count() > 1 {
                    let mut cut = line.len();
                    while cut > 0 && self.width(face, size, &line[..cut]) > width {
                        cut = line[..cut].char_indices().last().map_or(0, |(i, _)| i);
                    }
                    let cut = cut.max(line.chars().next().map_or(1, char::len_utf8));
                    let rest = line.split_off(cut);
                    lines.push(std::mem::replace(&mut line, rest));
                }
            }
            lines.push(line);
        }
        lines
    }
}

struct Layout {
    m: Metrics,
    pages: Vec<Vec<Mark>>,
    y: f32,
}

impl Layout {
    fn page(&mut self) -> &mut Vec<Mark> {
        self.pages.last_mut().expect("a page")
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Starts a new page unless `h` more points fit on this one.
    fn need(&mut self, h: f32) {
        if self.y + h > BOTTOM && self.y > MARGIN + 1.0 {
            self.new_page();
        }
    }

    fn text(&mut self, x: f32, y: f32, face: Face, size: f32, rgb: Rgb, text: &str) {
        if !text.is_empty() {
            self.page().push(Mark::Text {
                x,
                y,
                face,
                size,
                rgb,
                text: text.to_string(),
            });
        }
    }

    /// Wrapped text from the cursor, at `x` and `width`; returns nothing, moves the cursor.
    fn flow(&mut self, x: f32, width: f32, face: Face, size: f32, rgb: Rgb, text: &str) {
        let lead = size * 1.35;
        for line in self.m.wrap(face, size, text, width) {
            self.need(lead);
            self.y += lead;
            let y = self.y - size * 0.3;
            self.text(x, y, face, size, rgb, &line);
        }
    }

    fn hline(&mut self, y: f32, rgb: Rgb, width: f32) {
        self.page().push(Mark::Line {
            points: vec![(MARGIN, y), (MARGIN + TEXT_W, y)],
            width,
            rgb,
        });
    }

    fn block(&mut self, b: &Block) {
        match b {
            Block::Title { title, subtitle } => {
                self.flow(MARGIN, TEXT_W, Face::Bold, 19.0, INK, title);
                self.y += 2.0;
                self.flow(MARGIN, TEXT_W, Face::Regular, 10.0, GREY, subtitle);
                self.y += 8.0;
            }
            Block::Heading(t) => {
                self.need(90.0);
                self.y += 12.0;
                self.flow(MARGIN, TEXT_W, Face::Bold, 14.0, INK, t);
                self.y += 3.0;
                let y = self.y;
                self.hline(y, RULE, 0.8);
                self.y += 6.0;
            }
            Block::Subheading(t) => {
                self.need(60.0);
                self.y += 6.0;
                self.flow(MARGIN, TEXT_W, Face::Bold, 11.0, INK, t);
                self.y += 2.0;
            }
            Block::Para(t) => {
                self.flow(MARGIN, TEXT_W, Face::Regular, 10.0, INK, t);
                self.y += 5.0;
            }
            Block::Note(t) => {
                self.flow(MARGIN, TEXT_W, Face::Regular, 8.0, GREY, t);
                self.y += 4.0;
            }
            Block::Status {
                light,
                headline,
                detail,
            } => self.status(*light, headline, detail),
            Block::Bullets(items) => self.bullets(items),
            Block::Table {
                widths,
                header,
                rows,
            } => self.table(widths, header, rows),
            Block::Chart(c) => self.chart(c),
            Block::Commands(lines) => self.commands(lines),
            Block::Mono(lines) => self.mono_box(lines, 9.0, (0xff, 0xff, 0xff)),
            Block::Qr { text, caption } => self.qr(text, caption),
            Block::SignOff(roles) => self.sign_off(roles),
            Block::PageBreak => {
                if self.y > MARGIN + 1.0 {
                    self.new_page();
                }
            }
        }
    }

    /// A traffic light: the coloured dot and its word, then the headline and detail beside it.
    fn status(&mut self, light: Light, headline: &str, detail: &str) {
        let tx = MARGIN + 118.0;
        let tw = TEXT_W - 118.0;
        let head = self.m.wrap(Face::Bold, 10.5, headline, tw);
        let det = self.m.wrap(Face::Regular, 9.5, detail, tw);
        let h = head.len() as f32 * 14.0 + det.len() as f32 * 12.5 + 10.0;
        self.need(h);
        let top = self.y + 4.0;
        self.page().push(Mark::Circle {
            x: MARGIN + 8.0,
            y: top + 8.5,
            r: 7.5,
            rgb: light.rgb(),
        });
        self.text(
            MARGIN + 21.0,
            top + 12.0,
            Face::Bold,
            9.5,
            INK,
            light.word(),
        );
        let mut y = top;
        for l in head {
            y += 14.0;
            self.text(tx, y - 2.0, Face::Bold, 10.5, INK, &l);
        }
        for l in det {
            y += 12.5;
            self.text(tx, y - 2.0, Face::Regular, 9.5, INK, &l);
        }
        self.y = top + h - 4.0;
    }

    /// A list: an item with a light has a small dot and its word, one without a bullet.
    fn bullets(&mut self, items: &[(Option<Light>, String)]) {
        for (light, t) in items {
            match light {
                Some(l) => {
                    let tx = MARGIN + 100.0;
                    let lines = self.m.wrap(Face::Regular, 9.5, t, TEXT_W - 100.0);
                    self.need(lines.len() as f32 * 12.5 + 4.0);
                    let top = self.y;
                    self.page().push(Mark::Circle {
                        x: MARGIN + 5.0,
                        y: top + 8.0,
                        r: 4.5,
                        rgb: l.rgb(),
                    });
                    self.text(MARGIN + 14.0, top + 11.0, Face::Bold, 8.0, INK, l.word());
                    let mut y = top;
                    for line in lines {
                        y += 12.5;
                        self.text(tx, y - 1.5, Face::Regular, 9.5, INK, &line);
                    }
                    self.y = y + 4.0;
                }
                None => {
                    self.need(13.0);
                    let top = self.y;
                    self.text(MARGIN + 4.0, top + 11.0, Face::Regular, 9.5, INK, "•");
                    self.flow(MARGIN + 16.0, TEXT_W - 16.0, Face::Regular, 9.5, INK, t);
                    self.y += 2.0;
                }
            }
        }
        self.y += 4.0;
    }

    /// Shell commands after `$ `, long ones broken with continuations to fit the box.
    fn commands(&mut self, lines: &[String]) {
        let size = 8.5;
        let char_w = self.m.width(Face::Mono, size, "m");
        let cols = ((TEXT_W - 16.0) / char_w).floor() as usize;
        let mut out = Vec::new();
        for l in lines {
            out.extend(shell_lines(&format!("$ {l}"), cols));
        }
        self.mono_box(&out, size, (0xf2, 0xf2, 0xf2));
    }

    /// A QR code, its dark modules drawn as runs of rectangles, with its caption below.
    fn qr(&mut self, text: &str, caption: &str) {
        let Some((w, dark)) = qr_modules(text) else {
            self.flow(
                MARGIN,
                TEXT_W,
                Face::Regular,
                9.0,
                INK,
                "(too long for a QR code)",
            );
            return;
        };
        let side = 150.0_f32;
        let cell = side / w as f32;
        self.need(side + 30.0);
        let (x0, y0) = (MARGIN, self.y + 6.0);
        for row in 0..w {
            let mut col = 0;
            while col < w {
                if dark[row * w + col] {
                    let start = col;
                    while col < w && dark[row * w + col] {
                        col += 1;
                    }
                    self.page().push(Mark::Rect {
                        x: x0 + start as f32 * cell,
                        y: y0 + row as f32 * cell,
                        w: (col - start) as f32 * cell + 0.05,
                        h: cell + 0.05,
                        rgb: (0, 0, 0),
                    });
                } else {
                    col += 1;
                }
            }
        }
        self.y = y0 + side + 4.0;
        self.flow(MARGIN, TEXT_W, Face::Regular, 8.5, GREY, caption);
        self.y += 6.0;
    }

    /// Per role, lines to write a name, a signature and a date on.
    fn sign_off(&mut self, roles: &[String]) {
        for role in roles {
            self.need(110.0);
            self.y += 8.0;
            self.flow(MARGIN, TEXT_W, Face::Bold, 11.0, INK, role);
            for label in ["Name", "Signature", "Date"] {
                self.y += 26.0;
                let y = self.y;
                self.text(MARGIN, y, Face::Regular, 10.0, INK, label);
                self.page().push(Mark::Line {
                    points: vec![(MARGIN + 70.0, y + 2.0), (MARGIN + 360.0, y + 2.0)],
                    width: 0.7,
                    rgb: INK,
                });
            }
            self.y += 14.0;
        }
    }

    fn mono_box(&mut self, lines: &[String], size: f32, bg: Rgb) {
        let lead = size * 1.4;
        // Kept on one page when it fits on one.
        let whole = lines.len() as f32 * lead + 18.0;
        if whole < BOTTOM - MARGIN {
            self.need(whole);
        }
        let mut i = 0;
        while i < lines.len() {
            self.need(lead + 10.0);
            let fit = (((BOTTOM - self.y - 10.0) / lead).floor() as usize).max(1);
            let chunk = &lines[i..(i + fit).min(lines.len())];
            let h = chunk.len() as f32 * lead + 10.0;
            let top = self.y + 2.0;
            self.page().push(Mark::Rect {
                x: MARGIN,
                y: top,
                w: TEXT_W,
                h,
                rgb: bg,
            });
            let mut y = top + 5.0;
            for l in chunk {
                y += lead;
                self.text(MARGIN + 8.0, y - size * 0.35, Face::Mono, size, INK, l);
            }
            self.y = top + h + 6.0;
            i += chunk.len();
        }
    }

    fn table(&mut self, widths: &[f32], header: &[String], rows: &[Vec<String>]) {
        let size = 8.0;
        let lead = 10.5;
        let pad = 3.0;
        let cols: Vec<(f32, f32)> = {
            let mut x = MARGIN;
            widths
                .iter()
                .map(|w| {
                    let c = (x, w * TEXT_W);
                    x += w * TEXT_W;
                    c
                })
                .collect()
        };
        let cells = |m: &Metrics, row: &[String], face: Face| -> Vec<Vec<String>> {
            row.iter()
                .zip(&cols)
                .map(|(t, (_, w))| m.wrap(face, size, t, w - 2.0 * pad))
                .collect()
        };
        let head = cells(&self.m, header, Face::Bold);
        let draw_row = |l: &mut Layout, cells: &[Vec<String>], face: Face, shade: bool| {
            let n = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
            let h = n as f32 * lead + 2.0 * pad;
            let top = l.y;
            if shade {
                l.page().push(Mark::Rect {
                    x: MARGIN,
                    y: top,
                    w: TEXT_W,
                    h,
                    rgb: (0xe8, 0xe8, 0xe8),
                });
            }
            for (lines, (x, _)) in cells.iter().zip(&cols) {
                let mut y = top + pad;
                for line in lines {
                    y += lead;
                    l.text(x + pad, y - 2.5, face, size, INK, line);
                }
            }
            l.y = top + h;
            let y = l.y;
            l.hline(y, RULE, 0.5);
        };
        let head_h = head.iter().map(Vec::len).max().unwrap_or(1) as f32 * lead + 2.0 * pad;
        self.need(head_h * 2.0 + 10.0);
        self.y += 2.0;
        draw_row(self, &head, Face::Bold, true);
        for r in rows {
            let c = cells(&self.m, r, Face::Regular);
            let h = c.iter().map(Vec::len).max().unwrap_or(1) as f32 * lead + 2.0 * pad;
            if self.y + h > BOTTOM {
                self.new_page();
                draw_row(self, &head, Face::Bold, true);
            }
            draw_row(self, &c, Face::Regular, false);
        }
        self.y += 8.0;
    }

    fn chart(&mut self, c: &Chart) {
        self.need(200.0);
        self.flow(MARGIN, TEXT_W, Face::Bold, 9.5, INK, &c.title);
        let Some(bounds) = c.bounds() else {
            self.flow(MARGIN, TEXT_W, Face::Regular, 9.5, INK, &c.empty);
            self.y += 6.0;
            return;
        };
        let (w, h) = (TEXT_W, 170.0);
        let plot = Plot::new(w, h);
        let (ox, oy) = (MARGIN, self.y + 4.0);
        let at = |t, v| {
            let (x, y) = plot.at(t, v, bounds);
            (ox + x, oy + y)
        };
        for i in 0..=4 {
            let v = bounds.2 * f64::from(i) / 4.0;
            let (_, y) = at(bounds.0, v);
            self.page().push(Mark::Line {
                points: vec![(ox + plot.left, y), (ox + plot.left + plot.width, y)],
                width: 0.4,
                rgb: (0xdd, 0xdd, 0xdd),
            });
            let label = bytes(v);
            let lw = self.m.width(Face::Regular, 7.0, &label);
            self.text(
                ox + plot.left - 4.0 - lw,
                y + 2.5,
                Face::Regular,
                7.0,
                GREY,
                &label,
            );
        }
        let base = oy + plot.top + plot.height;
        self.page().push(Mark::Line {
            points: vec![
                (ox + plot.left, oy + plot.top),
                (ox + plot.left, base),
                (ox + plot.left + plot.width, base),
            ],
            width: 0.8,
            rgb: (0x33, 0x33, 0x33),
        });
        let first = bounds.0.format("%-d %b %Y").to_string();
        let last = bounds.1.format("%-d %b %Y").to_string();
        self.text(
            ox + plot.left,
            base + 10.0,
            Face::Regular,
            7.0,
            GREY,
            &first,
        );
        let lw = self.m.width(Face::Regular, 7.0, &last);
        self.text(
            ox + plot.left + plot.width - lw,
            base + 10.0,
            Face::Regular,
            7.0,
            GREY,
            &last,
        );
        let mut lx = ox + plot.left;
        for s in &c.series {
            let pts: Vec<(f32, f32)> = s.points.iter().map(|(t, v)| at(*t, *v)).collect();
            if pts.len() > 1 {
                self.page().push(Mark::Line {
                    points: pts.clone(),
                    width: 1.6,
                    rgb: s.rgb,
                });
            }
            for (x, y) in &pts {
                self.page().push(Mark::Circle {
                    x: *x,
                    y: *y,
                    r: 1.8,
                    rgb: s.rgb,
                });
            }
            let ly = oy + h - 10.0;
            self.page().push(Mark::Rect {
                x: lx,
                y: ly - 7.0,
                w: 8.0,
                h: 8.0,
                rgb: s.rgb,
            });
            self.text(lx + 12.0, ly, Face::Regular, 8.0, INK, &s.label);
            lx += 30.0 + self.m.width(Face::Regular, 8.0, &s.label);
        }
        self.y = oy + h + 6.0;
    }
}

/// Breaks a long shell command into lines of at most `cols` characters at spaces, ending each
/// but the last with ` \` (a shell line continuation) and indenting the rest, so that the
/// printed command can be typed or pasted as it is.
pub fn shell_lines(command: &str, cols: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut line = String::new();
    for word in command.split(' ') {
        let next = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if next.chars().count() + 2 > cols && !line.trim().is_empty() && !line.ends_with("$") {
            out.push(format!("{line} \\"));
            line = format!("    {word}");
        } else {
            line = next;
        }
    }
    out.push(line);
    out
}

/// Renders the document as an A4 PDF.
pub fn render(doc: &Doc) -> Vec<u8> {
    let mut l = Layout {
        m: Metrics::new(),
        pages: vec![Vec::new()],
        y: MARGIN,
    };
    for b in &doc.blocks {
        l.block(b);
    }
    if l.pages.len() > 1 && l.pages.last().is_some_and(Vec::is_empty) {
        l.pages.pop();
    }
    let total = l.pages.len();
    let font = |data: &'static [u8]| Font::new(data.to_vec().into(), 0).expect("embedded font");
    let fonts = [font(REGULAR), font(BOLD), font(MONO)];
    let mut document = Document::new();
    document.set_metadata(
        krilla::metadata::Metadata::new()
            .title(doc.title.clone())
            .creator(format!("firesafe {}", crate::VERSION)),
    );
    for (n, marks) in l.pages.iter().enumerate() {
        let mut page = document.start_page_with(PageSettings::from_wh(PAGE_W, PAGE_H).expect("A4"));
        let mut s = page.surface();
        let footer = format!("{} — page {} of {total}", doc.footer, n + 1);
        let fw = l.m.width(Face::Regular, 7.5, &footer);
        let footer = Mark::Text {
            x: PAGE_W - MARGIN - fw,
            y: PAGE_H - 28.0,
            face: Face::Regular,
            size: 7.5,
            rgb: GREY,
            text: footer,
        };
        for m in marks.iter().chain(std::iter::once(&footer)) {
            draw(&mut s, m, &fonts);
        }
        s.finish();
        page.finish();
    }
    document
        .finish()
        .expect("a document of text, lines and rectangles always serialises")
}

/// Draws one mark on the page's surface.
fn draw(s: &mut krilla::surface::Surface, m: &Mark, fonts: &[Font; 3]) {
    match m {
        Mark::Text {
            x,
            y,
            face,
            size,
            rgb,
            text,
        } => {
            s.set_stroke(None);
            s.set_fill(Some(fill(*rgb)));
            s.draw_text(
                Point::from_xy(*x, *y),
                fonts[*face as usize].clone(),
                *size,
                text,
                false,
                TextDirection::Auto,
            );
        }
        Mark::Rect { x, y, w, h, rgb } => {
            let mut pb = PathBuilder::new();
            if let Some(r) = krilla::geom::Rect::from_xywh(*x, *y, *w, *h) {
                pb.push_rect(r);
            }
            if let Some(path) = pb.finish() {
                s.set_stroke(None);
                s.set_fill(Some(fill(*rgb)));
                s.draw_path(&path);
            }
        }
        Mark::Circle { x, y, r, rgb } => {
            if let Some(path) = circle(*x, *y, *r) {
                s.set_stroke(None);
                s.set_fill(Some(fill(*rgb)));
                s.draw_path(&path);
            }
        }
        Mark::Line { points, width, rgb } => {
            let mut pb = PathBuilder::new();
            for (i, (x, y)) in points.iter().enumerate() {
                if i == 0 {
                    pb.move_to(*x, *y);
                } else {
                    pb.line_to(*x, *y);
                }
            }
            if let Some(path) = pb.finish() {
                s.set_fill(None);
                s.set_stroke(Some(Stroke {
                    paint: rgb::Color::new(rgb.0, rgb.1, rgb.2).into(),
                    width: *width,
                    ..Stroke::default()
                }));
                s.draw_path(&path);
            }
        }
    }
}

fn fill(c: Rgb) -> Fill {
    Fill {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

/// A circle as four Bézier arcs.
fn circle(cx: f32, cy: f32, r: f32) -> Option<krilla::geom::Path> {
    let k = 0.552_284_8 * r;
    let mut pb = PathBuilder::new();
    pb.move_to(cx + r, cy);
    pb.cubic_to(cx + r, cy + k, cx + k, cy + r, cx, cy + r);
    pb.cubic_to(cx - k, cy + r, cx - r, cy + k, cx - r, cy);
    pb.cubic_to(cx - r, cy - k, cx - k, cy - r, cx, cy - r);
    pb.cubic_to(cx + k, cy - r, cx + r, cy - k, cx + r, cy);
    pb.close();
    pb.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_commands_break_at_spaces_with_continuations() {
        let lines = shell_lines(
            "$ firesafe --repo /mnt/offsite/firesafe restore latest --source curriculum --to restored",
            40,
        );
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert!(lines[..lines.len() - 1].iter().all(|l| l.ends_with(" \\")));
        let joined: String = lines
            .iter()
            .map(|l| l.trim_end_matches('\\').trim())
            .collect::<Vec<_>>()
            .join(" ");
        assert_eq!(
            joined,
            "$ firesafe --repo /mnt/offsite/firesafe restore latest --source curriculum --to restored"
        );
    }

    #[test]
    fn renders_a_pdf() {
        let doc = Doc {
            title: "t".into(),
            footer: "f".into(),
            blocks: vec![
                Block::Title {
                    title: "Title".into(),
                    subtitle: "sub".into(),
                },
                Block::Qr {
                    text: "AGE-SECRET-KEY-1".into(),
                    caption: "c".into(),
                },
            ],
        };
        let pdf = render(&doc);
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
