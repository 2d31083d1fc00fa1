//! Plain printable pages over printpdf's built-in Helvetica (text stays extractable, no font
//! files ship): lines of text in three styles, labelled fields, rules; a `Writer` that starts a
//! new page when one fills up.

use printpdf::{
    BuiltinFont, Line, LinePoint, Mm, Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt,
    TextItem,
};

pub enum Style {
    Heading,
    Label,
    Body,
}

impl Style {
    fn font(&self) -> (BuiltinFont, f32) {
        match self {
            Style::Heading => (BuiltinFont::HelveticaBold, 13.0),
            Style::Label => (BuiltinFont::HelveticaBold, 8.0),
            Style::Body => (BuiltinFont::Helvetica, 11.0),
        }
    }
}

pub struct Page {
    pub ops: Vec<Op>,
    y: f32,
    left: f32,
    right: f32,
}

const MARGIN_MM: f32 = 15.0;

impl Page {
    pub fn new(width: f32, height: f32) -> Self {
        let margin = Mm(MARGIN_MM).into_pt().0;
        Self { ops: Vec::new(), y: height - margin, left: margin, right: width - margin }
    }

    pub fn text(&mut self, style: Style, text: &str) {
        let (font, size) = style.font();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            self.y -= size * 1.35;
            self.ops.extend([
                Op::StartTextSection,
                Op::SetFont { font: PdfFontHandle::Builtin(font), size: Pt(size) },
                Op::SetTextCursor { pos: Point { x: Pt(self.left), y: Pt(self.y) } },
                Op::ShowText { items: vec![TextItem::Text(line.to_string())] },
                Op::EndTextSection,
            ]);
        }
    }

    pub fn field(&mut self, label: &str, value: &str) {
        if !value.trim().is_empty() {
            self.text(Style::Body, &format!("{label}: {value}"));
        }
    }

    pub fn rule(&mut self) {
        self.y -= 8.0;
        let point = |x: f32, y: f32| LinePoint { p: Point { x: Pt(x), y: Pt(y) }, bezier: false };
        let line =
            Line { points: vec![point(self.left, self.y), point(self.right, self.y)], is_closed: false };
        self.ops.extend([Op::SetOutlineThickness { pt: Pt(0.7) }, Op::DrawLine { line }]);
    }

    pub fn gap(&mut self) {
        self.y -= 6.0;
    }

    fn full(&self) -> bool {
        self.y < Mm(MARGIN_MM).into_pt().0 + 30.0
    }
}

/// A document of `width` × `height` millimetres whose text flows onto as many pages as it needs.
pub struct Writer {
    size_mm: (f32, f32),
    done: Vec<Vec<Op>>,
    pub page: Page,
}

impl Writer {
    pub fn new(width_mm: f32, height_mm: f32) -> Self {
        Self { size_mm: (width_mm, height_mm), done: Vec::new(), page: Self::blank(width_mm, height_mm) }
    }

    fn blank(width_mm: f32, height_mm: f32) -> Page {
        Page::new(Mm(width_mm).into_pt().0, Mm(height_mm).into_pt().0)
    }

    /// Starts a new page if this one has no room left for a line.
    pub fn room(&mut self) -> &mut Page {
        if self.page.full() {
            let next = Self::blank(self.size_mm.0, self.size_mm.1);
            self.done.push(std::mem::replace(&mut self.page, next).ops);
        }
        &mut self.page
    }

    pub fn finish(mut self, title: &str) -> Vec<u8> {
        self.done.push(self.page.ops);
        let (w, h) = self.size_mm;
        let pages = self.done.into_iter().map(|ops| PdfPage::new(Mm(w), Mm(h), ops)).collect();
        let mut doc = PdfDocument::new(title);
        doc.with_pages(pages);
        doc.save(&PdfSaveOptions::default(), &mut Vec::new())
    }
}

pub fn joined(parts: &[Option<&str>], sep: &str) -> String {
    parts.iter().flatten().map(|s| s.trim()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(sep)
}
