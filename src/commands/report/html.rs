//! The status page as HTML: one self-contained document (inline CSS and
//! SVG, no script, nothing fetched — its Content-Security-Policy forbids
//! it) rendered from the [`Report`] model. Each section shows a picture
//! first and its numbers beside it. Every text from the catalogue, the
//! config or the changer goes through [`esc`], so a name holding markup
//! shows as text.

use serde_json::Value;

use super::{Element, LibraryView, RATE_DAYS, RateRow, Report, TallyView, TapeBar, Waiting};

/// Colours (Okabe–Ito, safe for colour-blind readers) of the bar parts.
const CONFIRMED: &str = "#0072b2";
const RECORDED: &str = "#56b4e9";
const ASSIGNED: &str = "#e69f00";
const FREE: &str = "#f2f2f2";
const ARCHIVE: &str = "#0072b2";
const CONFIRM: &str = "#d55e00";
const DRIVE: &str = "#009e73";

const CSS: &str = "
:root{color-scheme:light}
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1b1b1b;background:#fff;
 margin:0 auto;max-width:76rem;padding:1rem;overflow-wrap:anywhere}
h1{font-size:1.6rem;margin:.2rem 0}
h2{font-size:1.25rem;border-bottom:2px solid #d0d0d0;padding-bottom:.2rem;margin:1.6rem 0 .6rem}
.meta{color:#3b3b3b;margin:.2rem 0}
.summary{padding:.5rem .8rem;border-left:6px solid;margin:.4rem 0}
.ok{background:#e8f5ec;border-color:#1e7a3c}
.bad{background:#fdecea;border-color:#b3261e}
.findings{padding-left:1.2rem;margin:.3rem 0}
.findings>li{margin:.4rem 0}
.findings ul{padding-left:1.1rem;margin:.2rem 0}
.findings li li{margin:.15rem 0}
.kind{font-weight:600}
.tag{display:inline-block;font-size:.8rem;padding:0 .45em;border:1px solid #6b6b6b;border-radius:.3em;margin-left:.3em;
 background:#fff;color:#1b1b1b}
.tag.problem{border-color:#b3261e;color:#8c1d18;background:#fdecea}
.tag.notice{border-color:#6b6b6b;color:#3b3b3b}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1.1rem;font-size:.9rem;margin:.3rem 0 .6rem;padding:0;list-style:none}
.sw{display:inline-block;width:.95em;height:.95em;border:1px solid #4b4b4b;vertical-align:-.12em;margin-right:.3em}
.row{display:grid;grid-template-columns:minmax(8rem,15rem) minmax(8rem,1fr) minmax(14rem,24rem);gap:.25rem 1rem;
 align-items:center;padding:.5rem 0;border-bottom:1px solid #e4e4e4}
.name{font-weight:600}
.sub{font-size:.85rem;color:#3b3b3b;font-weight:400}
svg.bar{display:block;width:100%;height:1.5rem;border:1px solid #6b6b6b;background:#fff}
.nums{font-size:.88rem;font-variant-numeric:tabular-nums}
.nums>span{display:block}
table{border-collapse:collapse;width:100%;font-size:.9rem;font-variant-numeric:tabular-nums}
th,td{text-align:left;padding:.25rem .5rem;border-bottom:1px solid #dcdcdc;vertical-align:top;overflow-wrap:normal}
td.path{overflow-wrap:anywhere}
td.n,th.n{text-align:right}
.chart{display:grid;grid-template-columns:minmax(16rem,3fr) minmax(20rem,2fr);gap:1rem;align-items:start}
.rt th,.rt td{overflow-wrap:normal;white-space:nowrap;padding:.25rem .35rem}
svg.rates{width:100%;max-width:36rem;height:auto;display:block}
.slots{display:grid;grid-template-columns:repeat(auto-fill,minmax(8.5rem,1fr));gap:.4rem;margin:.4rem 0}
.el{border:2px solid #6b6b6b;border-radius:.3rem;padding:.25rem .4rem;font-size:.85rem;background:#fff}
.el b{display:block}
.el.tape{border-color:#0072b2;background:#e9f2fa}
.el.cleaning{border-color:#cc79a7;background:#faeef5}
.el.unknown,.el.no_barcode{border-color:#d55e00;background:#fdf0e8}
.el.empty{border-style:dashed;color:#4b4b4b}
footer{margin-top:2rem;font-size:.85rem;color:#3b3b3b}
@media (max-width:760px){
 body{padding:.6rem}
 .row,.chart{grid-template-columns:1fr}
}
@media print{
 body{max-width:none;padding:0;font-size:10pt}
 section{break-inside:avoid-page}
 .row{break-inside:avoid}
 *{print-color-adjust:exact;-webkit-print-color-adjust:exact}
}
";

/// Escape text for HTML (element content and quoted attributes): `&`,
/// `<`, `>`, `"` and `'` become entities, and control characters (which
/// HTML cannot show) become U+FFFD, except tab and newline.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn page(r: &Report) -> String {
    let mut p = String::with_capacity(64 * 1024);
    p.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    p.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    p.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n");
    p.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    p.push_str(&format!("<title>tapeop status — {}</title>\n", esc(&r.made_at)));
    p.push_str(&format!("<style>{CSS}</style></head>\n<body>\n"));
    p.push_str(&header(r));
    p.push_str(&check_section(&r.check));
    p.push_str(&tapes_section(&r.tapes));
    p.push_str(&waiting_section(&r.waiting));
    p.push_str(&rates_section(&r.rates));
    if let Some(lib) = &r.library {
        p.push_str(&library_section(lib));
    }
    p.push_str("<footer>Written by <code>tapeop report --html</code>. ");
    p.push_str("<code>report.json</code> beside this page holds the same facts. GB = 10<sup>9</sup> bytes (KiB / 10<sup>6</sup>, as the reports print it).</footer>\n");
    p.push_str("</body></html>\n");
    p
}

fn header(r: &Report) -> String {
    let id = r.catalogue.catalogue_id.as_deref().map_or(String::new(), |i| format!(" (id {})", esc(i)));
    let last = |what: &str, f: &Option<super::Finished>| match f {
        Some(f) => format!("Last {what} finished {} ({})", ago(f.seconds_ago), esc(&f.ended)),
        None => format!("No {what} finished yet"),
    };
    format!(
        "<header><h1>tapeop status</h1>\n<p class=\"meta\">Made {} from catalogue <code>{}</code>{id}.</p>\n\
         <p class=\"meta\">{}. {}.</p></header>\n",
        esc(&r.made_at),
        esc(&r.catalogue.path),
        last("archive", &r.last_archive),
        last("confirm", &r.last_confirm)
    )
}

/// How long ago, in words: `just now`, `5 min ago`, `3 h 20 min ago`, `4 days ago`.
pub fn ago(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..60 => "just now".to_string(),
        60..3600 => format!("{} min ago", s / 60),
        3600..172_800 => format!("{} h {} min ago", s / 3600, s % 3600 / 60),
        _ => format!("{} days ago", (s + 43_200) / 86_400),
    }
}

// ---- check ----

fn check_section(doc: &Value) -> String {
    let ok = doc["ok"].as_bool().unwrap_or(false);
    let mut s = String::from("<section id=\"check\"><h2>What needs a person</h2>\n");
    s.push_str(&format!(
        "<p class=\"summary {}\">{}</p>\n",
        if ok { "ok" } else { "bad" },
        esc(doc["summary"].as_str().unwrap_or("tapeop check gave no summary"))
    ));
    let Some(conditions) = doc["conditions"].as_object() else {
        return s + "</section>\n";
    };
    let shown: Vec<(&String, &Value)> = conditions.iter().filter(|(_, c)| c["count"].as_u64() > Some(0)).collect();
    if !shown.is_empty() {
        s.push_str("<p class=\"meta\">In <code>tapeop check</code>'s words; each line says what deals with it.</p>\n");
        s.push_str("<ul class=\"findings\">\n");
        // Problems first, then notices, each in check's key order.
        for problem in [true, false] {
            for (key, c) in shown.iter().filter(|(_, c)| c["problem"].as_bool() == Some(problem)) {
                s.push_str(&condition(key, c, problem));
            }
        }
        s.push_str("</ul>\n");
    }
    if !conditions.contains_key("integrity") {
        s.push_str(
            "<p class=\"meta\">The catalogue's integrity is not checked for this page (that reads all of it): \
             <code>tapeop check</code> does it.</p>\n",
        );
    }
    s + "</section>\n"
}

fn condition(key: &str, c: &Value, problem: bool) -> String {
    let (class, word) = if problem { ("problem", "problem") } else { ("notice", "notice") };
    let mut s = format!(
        "<li><span class=\"kind\">{}</span> <span class=\"tag {class}\">{word}</span> <span class=\"tag\">{}</span>\n<ul>",
        esc(key),
        c["count"].as_u64().unwrap_or(0)
    );
    for item in c["items"].as_array().into_iter().flatten() {
        s.push_str(&format!("<li>{}</li>", esc(item["detail"].as_str().unwrap_or_default())));
    }
    if let Some(more) = c["more"].as_u64().filter(|m| *m > 0) {
        s.push_str(&format!("<li>… and {more} more (<code>tapeop check</code> lists them)</li>"));
    }
    s + "</ul></li>\n"
}

// ---- tapes ----

fn swatch(colour: &str) -> String {
    format!("<span class=\"sw\" style=\"background:{colour}\"></span>")
}

fn legend(parts: &[(&str, &str)]) -> String {
    let items: Vec<String> = parts.iter().map(|(c, l)| format!("<li>{}{l}</li>", swatch(c))).collect();
    format!("<ul class=\"legend\">{}</ul>\n", items.join(""))
}

/// `1 target`, `3 targets`.
fn plural(n: i64, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

fn gb(kb: i64) -> String {
    format!("{:.3} GB", kb as f64 / 1e6)
}

fn tapes_section(tapes: &[TapeBar]) -> String {
    let mut s = String::from("<section id=\"tapes\"><h2>Tapes</h2>\n");
    if tapes.is_empty() {
        return s + "<p>No tape in the catalogue yet: <code>tapeop open_tape NAME</code> makes one.</p></section>\n";
    }
    s.push_str(&legend(&[
        (CONFIRMED, "confirmed"),
        (RECORDED, "recorded, not yet confirmed"),
        (ASSIGNED, "assigned, not yet written"),
        (FREE, "free (where the capacity is known)"),
    ]));
    // Without a capacity, a bar is drawn against the largest tape's total.
    let widest = tapes.iter().map(|t| t.total.size_kb * 1024).max().unwrap_or(0).max(1);
    for t in tapes {
        s.push_str(&tape_row(t, widest));
    }
    s + "</section>\n"
}

fn tape_row(t: &TapeBar, widest: i64) -> String {
    let scale = t.capacity_bytes.filter(|c| *c > 0).unwrap_or(widest).max(t.total.size_kb * 1024) as f64;
    let parts = [
        (CONFIRMED, t.confirmed.size_kb * 1024),
        (RECORDED, t.recorded.size_kb * 1024),
        (ASSIGNED, t.assigned.size_kb * 1024),
        (FREE, t.free_bytes.unwrap_or(0)),
    ];
    let label = format!(
        "{}: {} confirmed, {} recorded, {} assigned",
        t.name,
        gb(t.confirmed.size_kb),
        gb(t.recorded.size_kb),
        gb(t.assigned.size_kb)
    );
    format!(
        "<div class=\"row\"><div><span class=\"name\">{}</span>{}<br><span class=\"sub\">{}</span></div>\n{}\n<div class=\"nums\">{}</div></div>\n",
        esc(&t.name),
        tags(t),
        esc(&tape_sub(t)),
        bar(&parts, scale, &label),
        tape_numbers(t)
    )
}

fn tags(t: &TapeBar) -> String {
    let mut tags = vec![format!("<span class=\"tag\">{}</span>", esc(&t.status))];
    if t.online {
        tags.push("<span class=\"tag\">online</span>".to_string());
    }
    tags.join("")
}

fn tape_sub(t: &TapeBar) -> String {
    let mut sub = vec![format!("pool {}", t.pool)];
    if t.copy_pool {
        sub.push("a copy pool".to_string());
    }
    if let Some(serial) = &t.serial {
        sub.push(format!("serial {serial}"));
    }
    sub.join(" · ")
}

fn tape_numbers(t: &TapeBar) -> String {
    let part = |colour: &str, what: &str, v: &TallyView| {
        format!("<span>{}{what} {} ({})</span>", swatch(colour), gb(v.size_kb), plural(v.count, "tape file"))
    };
    let mut s = [
        part(CONFIRMED, "confirmed", &t.confirmed),
        part(RECORDED, "recorded", &t.recorded),
        part(ASSIGNED, "assigned", &t.assigned),
    ]
    .join(" ");
    match (t.capacity_bytes, t.free_bytes) {
        (Some(cap), Some(free)) if cap > 0 => {
            let used = 100.0 * (cap - free) as f64 / cap as f64;
            s.push_str(&format!(
                " <span>{}free {:.3} GB of {:.3} GB ({used:.0}% used)</span>",
                swatch(FREE),
                free as f64 / 1e9,
                cap as f64 / 1e9
            ));
        }
        _ => s.push_str(" <span>capacity unknown</span>"),
    }
    s
}

/// A horizontal bar of `parts` (colour, bytes) on a scale of `scale` bytes.
fn bar(parts: &[(&str, i64)], scale: f64, label: &str) -> String {
    let mut s = format!(
        "<svg class=\"bar\" viewBox=\"0 0 1000 20\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
    let mut x = 0.0;
    for (colour, bytes) in parts {
        let w = if scale > 0.0 { 1000.0 * (*bytes).max(0) as f64 / scale } else { 0.0 };
        let w = w.min(1000.0 - x);
        if w > 0.0 {
            s.push_str(&format!("<rect x=\"{x:.2}\" y=\"0\" width=\"{w:.2}\" height=\"20\" fill=\"{colour}\"/>"));
        }
        x += w;
    }
    s + "</svg>"
}

// ---- waiting ----

fn waiting_section(w: &Waiting) -> String {
    let mut s = String::from("<section id=\"waiting\"><h2>Targets waiting</h2>\n");
    let widest = [w.unassigned.size_kb, w.assigned.size_kb, w.recorded.size_kb].into_iter().max().unwrap_or(0).max(1);
    let recorded_age = match w.oldest_recorded_days {
        Some(d) => format!("oldest written {d:.1} days ago"),
        None if w.recorded.count > 0 => "written when not known".to_string(),
        None => String::new(),
    };
    let unknown = if w.recorded_age_unknown > 0 {
        format!("; {} with no date (the old tool's)", w.recorded_age_unknown)
    } else {
        String::new()
    };
    let rows = [
        ("#6b6b6b", "unassigned", "waiting for a tape: tapeop assign", &w.unassigned, "age not recorded".to_string()),
        (ASSIGNED, "assigned", "waiting for tapeop archive", &w.assigned, "age not recorded".to_string()),
        (RECORDED, "recorded, unconfirmed", "waiting for tapeop confirm", &w.recorded, recorded_age + &unknown),
    ];
    for (colour, what, todo, tally, age) in rows {
        s.push_str(&format!(
            "<div class=\"row\"><div><span class=\"name\">{what}</span><br><span class=\"sub\">{todo}</span></div>\n{}\n\
             <div class=\"nums\"><span>{}, {}</span> <span>{}</span></div></div>\n",
            bar(&[(colour, tally.size_kb)], widest as f64, &format!("{what}: {}", gb(tally.size_kb))),
            plural(tally.count, "target"),
            gb(tally.size_kb),
            esc(&age)
        ));
    }
    for (pool, t) in &w.unassigned_pools {
        s.push_str(&format!(
            "<p class=\"meta\">pool {}: {} targets lack a copy ({})</p>\n",
            esc(pool),
            t.count,
            gb(t.size_kb)
        ));
    }
    s.push_str(&oldest_table(w));
    s + "</section>\n"
}

fn oldest_table(w: &Waiting) -> String {
    if w.recorded_oldest.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "<table><caption class=\"meta\" style=\"text-align:left\">The oldest tape files written and not yet confirmed</caption>\n\
         <tr><th>Tape</th><th class=\"n\">File</th><th>Target</th><th>Written</th><th class=\"n\">Days</th></tr>\n",
    );
    for f in &w.recorded_oldest {
        s.push_str(&format!(
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"path\">{}</td><td>{}</td><td class=\"n\">{}</td></tr>\n",
            esc(&f.tape),
            f.file_number,
            esc(&f.target),
            esc(f.written_at.as_deref().unwrap_or("unknown")),
            f.age_days.map_or("-".to_string(), |d| format!("{d:.1}"))
        ));
    }
    s + "</table>\n"
}

// ---- rates ----

/// Chart geometry: the plot area inside the SVG's 460×230 view box.
const PLOT: (f64, f64, f64, f64) = (62.0, 12.0, 448.0, 196.0);

fn rates_section(rows: &[RateRow]) -> String {
    let mut s = format!("<section id=\"rates\"><h2>Rates, the last {RATE_DAYS} days</h2>\n");
    let rated: Vec<&RateRow> = rows.iter().filter(|r| r.rate_mb_s.is_some() || r.drive_mb_per_s.is_some()).collect();
    if rated.is_empty() {
        return s + &format!(
            "<p>No archive or confirm with a known rate finished in the last {RATE_DAYS} days \
             (a rate needs a tape file's bytes and duration, and the drive's own rate \
             the st driver's statistics).</p></section>\n"
        );
    }
    s.push_str(&legend(&[
        (ARCHIVE, "archive (circle), MB/s of each tape file"),
        (CONFIRM, "confirm (square)"),
        (DRIVE, "the drive's own rate (triangle), where known"),
    ]));
    s.push_str("<div class=\"chart\">");
    s.push_str(&rate_chart(&rated));
    s.push_str(&rate_table(rows));
    s + "</div></section>\n"
}

fn rate_chart(rows: &[&RateRow]) -> String {
    let top = nice_top(rows.iter().flat_map(|r| [r.rate_mb_s, r.drive_mb_per_s]).flatten().fold(0.0, f64::max));
    let (x0, y0, x1, y1) = PLOT;
    let x = |age: f64| x1 - (x1 - x0) * age.clamp(0.0, f64::from(RATE_DAYS)) / f64::from(RATE_DAYS);
    let y = |v: f64| y1 - (y1 - y0) * (v / top).clamp(0.0, 1.0);
    let mut s = String::from(
        "<svg class=\"rates\" viewBox=\"0 0 460 230\" role=\"img\" aria-label=\"archive and confirm rates, MB/s, by day\">",
    );
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        s.push_str(&format!(
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#d0d0d0\"/>\
             <text x=\"{tx}\" y=\"{ty:.1}\" font-size=\"13\" text-anchor=\"end\" fill=\"#1b1b1b\">{v:.0}</text>",
            yy = y(v),
            tx = x0 - 6.0,
            ty = y(v) + 4.0
        ));
    }
    for d in [30, 20, 10, 0] {
        let label = if d == 0 { "now".to_string() } else { format!("{d} days ago") };
        s.push_str(&format!(
            "<text x=\"{:.1}\" y=\"218\" font-size=\"13\" text-anchor=\"middle\" fill=\"#1b1b1b\">{label}</text>",
            x(f64::from(d)).clamp(x0 + 30.0, x1 - 12.0)
        ));
    }
    s.push_str(&format!(
        "<text x=\"12\" y=\"{:.0}\" font-size=\"13\" fill=\"#1b1b1b\" transform=\"rotate(-90 12 {:.0})\" text-anchor=\"middle\">MB/s</text>",
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    ));
    for r in rows {
        let cx = x(r.age_days);
        if let Some(v) = r.rate_mb_s {
            s.push_str(&marker(&r.kind, cx, y(v)));
        }
        if let Some(v) = r.drive_mb_per_s {
            s.push_str(&marker("drive", cx, y(v)));
        }
    }
    s + "</svg>"
}

fn marker(kind: &str, cx: f64, cy: f64) -> String {
    match kind {
        "archive" => format!("<circle cx=\"{cx:.1}\" cy=\"{cy:.1}\" r=\"4.5\" fill=\"{ARCHIVE}\" stroke=\"#fff\"/>"),
        "confirm" => format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"8\" height=\"8\" fill=\"{CONFIRM}\" stroke=\"#fff\"/>",
            cx - 4.0,
            cy - 4.0
        ),
        _ => format!(
            "<path d=\"M{cx:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z\" fill=\"{DRIVE}\" stroke=\"#fff\"/>",
            cy - 5.0,
            cx + 5.0,
            cy + 4.0,
            cx - 5.0,
            cy + 4.0
        ),
    }
}

/// A round top for the chart's scale: 1, 2 or 5 × 10^n, at least `max`.
fn nice_top(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|t| *t >= max).unwrap_or(10.0 * p)
}

fn rate_table(rows: &[RateRow]) -> String {
    let mut s = String::from(
        "<table class=\"rt\"><caption class=\"meta\" style=\"text-align:left\">MB/s of each tape file</caption>\
         <tr><th>Kind</th><th class=\"n\">Runs</th><th class=\"n\">Median</th><th class=\"n\">Low</th>\
         <th class=\"n\">High</th><th class=\"n\">Failed</th></tr>\n",
    );
    for kind in ["archive", "confirm"] {
        let of_kind: Vec<&RateRow> = rows.iter().filter(|r| r.kind == kind).collect();
        let mut rates: Vec<f64> = of_kind.iter().filter_map(|r| r.rate_mb_s).collect();
        rates.sort_by(f64::total_cmp);
        let failed = of_kind.iter().filter(|r| r.outcome.as_deref() != Some("ok")).count();
        let mb = |v: Option<&f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
        s.push_str(&format!(
            "<tr><td>{kind}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{failed}</td></tr>\n",
            of_kind.len(),
            mb(rates.get(rates.len() / 2)),
            mb(rates.first()),
            mb(rates.last())
        ));
    }
    s + "</table>"
}

// ---- library ----

fn library_section(lib: &LibraryView) -> String {
    let mut s = format!("<section id=\"library\"><h2>Library <span class=\"sub\">{}</span></h2>\n", esc(&lib.changer));
    if let Some(e) = &lib.error {
        return s + &format!("<p class=\"summary bad\">The changer could not be read: {}</p></section>\n", esc(e));
    }
    s.push_str(&legend(&[
        ("#0072b2", "a catalogue tape"),
        ("#cc79a7", "cleaning cartridge"),
        ("#d55e00", "not in the catalogue, or no barcode"),
        ("#ffffff", "empty"),
    ]));
    s.push_str("<h3>Drives</h3>\n<div class=\"slots\">");
    s.extend(lib.drives.iter().map(element));
    s.push_str("</div>\n<h3>Slots</h3>\n<div class=\"slots\">");
    s.extend(lib.slots.iter().map(element));
    s + "</div></section>\n"
}

fn element(e: &Element) -> String {
    let code = e.barcode.as_deref().map_or(String::new(), |c| format!("<br><code>{}</code>", esc(c)));
    format!("<div class=\"el {}\"><b>{}</b>{}{code}</div>", esc(&e.holds), esc(&e.label), esc(&e.what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup() {
        assert_eq!(esc("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        assert_eq!(esc("a&b \"q\" 'r'"), "a&amp;b &quot;q&quot; &#39;r&#39;");
        assert_eq!(esc("bad\u{fffd}name\u{0}\u{1b}[1m"), "bad\u{fffd}name\u{fffd}\u{fffd}[1m");
        assert_eq!(esc("tab\tline\n"), "tab\tline\n");
        assert_eq!(esc("café"), "café");
    }

    #[test]
    fn ages_in_words() {
        assert_eq!(ago(-5), "just now");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(61), "1 min ago");
        assert_eq!(ago(3 * 3600 + 20 * 60), "3 h 20 min ago");
        assert_eq!(ago(5 * 86_400 + 7), "5 days ago");
    }

    #[test]
    fn chart_tops_are_round() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(140.0), 200.0);
        assert_eq!(nice_top(300.0), 500.0);
        assert_eq!(nice_top(1.0), 1.0);
        assert_eq!(nice_top(0.37), 0.5);
    }

    #[test]
    fn bars_fill_in_order_and_never_overflow() {
        let svg = bar(&[("#a", 50), ("#b", 100)], 100.0, "<x>");
        assert!(svg.contains("aria-label=\"&lt;x&gt;\""), "{svg}");
        assert!(svg.contains("x=\"0.00\" y=\"0\" width=\"500.00\""), "{svg}");
        assert!(svg.contains("x=\"500.00\" y=\"0\" width=\"500.00\""), "{svg}");
    }
}
