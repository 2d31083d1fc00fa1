//! Reading Tesseract's TSV output: the words in reading order and their mean confidence.

/// The page's text (a line per Tesseract line) and the mean confidence (0-100) of its words;
/// None when no word was recognised.
pub fn from_tsv(tsv: &str) -> (String, Option<f64>) {
    let mut text = String::new();
    let mut line = None;
    let (mut sum, mut words) = (0.0, 0u32);
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        let [level, _, block, par, ln, _, _, _, _, _, conf, word] = cols[..] else { continue };
        let Ok(conf) = conf.parse::<f64>() else { continue };
        if level != "5" || conf < 0.0 || word.trim().is_empty() {
            continue;
        }
        let here = (block, par, ln);
        match line {
            Some(prev) if prev == here => text.push(' '),
            Some(_) => text.push('\n'),
            None => {}
        }
        line = Some(here);
        text.push_str(word.trim());
        sum += conf;
        words += 1;
    }
    (text, (words > 0).then(|| sum / f64::from(words)))
}

/// `Pages: N` from `pdfinfo`.
pub fn page_count(pdfinfo: &str) -> Option<u32> {
    pdfinfo.lines().find_map(|l| l.strip_prefix("Pages:")).and_then(|n| n.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_join_into_lines_with_their_mean_confidence() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
                   1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t\n\
                   5\t1\t1\t1\t1\t1\t0\t0\t1\t1\t90\tGlucose\n\
                   5\t1\t1\t1\t1\t2\t0\t0\t1\t1\t80\t5.4\n\
                   5\t1\t1\t1\t2\t1\t0\t0\t1\t1\t70\tmmol/L\n";
        let (text, conf) = from_tsv(tsv);
        assert_eq!(text, "Glucose 5.4\nmmol/L");
        assert!((conf.unwrap() - 80.0).abs() < 1e-9);
        assert_eq!(from_tsv("header\n"), (String::new(), None));
        assert_eq!(page_count("Title: x\nPages:          3\n"), Some(3));
    }
}
