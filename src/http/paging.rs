//! Numbered pages: `page` (1-based, default 1) and `page_size` (default 25, at most 100).

pub struct Window {
    pub page: u32,
    pub page_size: u32,
    pub offset: u64,
}

pub fn window(page: Option<u32>, page_size: Option<u32>) -> Window {
    let page = page.unwrap_or(1).max(1);
    let page_size = page_size.unwrap_or(25).clamp(1, 100);
    Window { page, page_size, offset: u64::from(page - 1) * u64::from(page_size) }
}
