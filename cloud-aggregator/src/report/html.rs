//! The report as one self-contained HTML page: the data inline as JSON, an
//! interactive 3-D scatter drawn by inline JavaScript on a canvas (drag to rotate,
//! click a fruit in the legend to hide it), the PNG charts inline as data URIs.
//! No CDN, no network: the page works from a file.

use super::data::ReportData;
use super::png::class_colour;

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the head's calibration measured, as one sentence (leading space).
fn calibration_sentence(m: &fruits_head::HeadMetrics) -> String {
    let held = match m.calibration {
        fruits_head::Calibration::HeldOutDevices => {
            format!("{} rows of devices it never trained on ({} folds)", m.heldout_rows, m.folds)
        }
        fruits_head::Calibration::HeldOutRows => {
            format!("{} held-out rows of its one device (optimistic: views of one photo on both sides)", m.heldout_rows)
        }
    };
    let novel = match m.novel_rows {
        0 => String::new(),
        n => format!(", {:.1}% of {n} rows of fruits it never saw answered unknown", m.novel_rejected * 100.0),
    };
    format!(
        " Calibrated on {held}: top-1 {:.1}%, calibration error (ECE) {:.3}, {:.1}% of them answered, {:.1}% of those answers right{novel}.",
        m.heldout_accuracy * 100.0,
        m.heldout_ece,
        m.heldout_known_rate * 100.0,
        m.heldout_answer_precision * 100.0
    )
}

/// Escapes text for HTML element content and attribute values.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// JSON safe inside a `<script>` element (no `</script>`, no `<!--`).
fn script_json(value: &impl serde::Serialize) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string(value)?.replace('<', "\\u003c"))
}

const SCRIPT: &str = r#"
const data = JSON.parse(document.getElementById('report-data').textContent);
const colours = JSON.parse(document.getElementById('report-colours').textContent);
const canvas = document.getElementById('scatter');
const ctx = canvas.getContext('2d');
const hidden = new Set();
let yaw = 0.6, pitch = 0.35, drag = null;
const lo = [0, 1, 2].map(i => Math.min(...data.points.map(p => p.pc[i])));
const hi = [0, 1, 2].map(i => Math.max(...data.points.map(p => p.pc[i])));
const norm = p => [0, 1, 2].map(i => (p.pc[i] - (lo[i] + hi[i]) / 2) / ((hi[i] - lo[i]) / 2 || 1));
function project(v) {
  const [x, y, z] = v;
  const x1 = x * Math.cos(yaw) - z * Math.sin(yaw), z1 = x * Math.sin(yaw) + z * Math.cos(yaw);
  const y2 = y * Math.cos(pitch) - z1 * Math.sin(pitch), z2 = y * Math.sin(pitch) + z1 * Math.cos(pitch);
  const s = Math.min(canvas.width, canvas.height) * 0.33;
  return [canvas.width / 2 + x1 * s, canvas.height / 2 - y2 * s, z2];
}
function draw() {
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  const axes = [[[-1, -1, -1], [1, -1, -1], 'PC1'], [[-1, -1, -1], [-1, 1, -1], 'PC2'], [[-1, -1, -1], [-1, -1, 1], 'PC3']];
  ctx.strokeStyle = '#999'; ctx.fillStyle = '#333'; ctx.font = '13px sans-serif';
  for (const [a, b, name] of axes) {
    const p = project(a), q = project(b);
    ctx.beginPath(); ctx.moveTo(p[0], p[1]); ctx.lineTo(q[0], q[1]); ctx.stroke();
    ctx.fillText(name, q[0] + 4, q[1]);
  }
  const shown = data.points.filter(p => !hidden.has(p.class)).map(p => [project(norm(p)), p.class]);
  shown.sort((a, b) => a[0][2] - b[0][2]);
  for (const [[x, y], c] of shown) {
    ctx.fillStyle = colours[c];
    ctx.beginPath(); ctx.arc(x, y, 3.2, 0, 2 * Math.PI); ctx.fill();
  }
}
canvas.addEventListener('mousedown', e => { drag = [e.clientX, e.clientY]; });
window.addEventListener('mouseup', () => { drag = null; });
window.addEventListener('mousemove', e => {
  if (!drag) return;
  yaw += (e.clientX - drag[0]) * 0.01;
  pitch = Math.max(-1.5, Math.min(1.5, pitch + (e.clientY - drag[1]) * 0.01));
  drag = [e.clientX, e.clientY];
  draw();
});
const legend = document.getElementById('legend');
data.classes.forEach((name, i) => {
  const item = document.createElement('li');
  item.innerHTML = '<span class="swatch"></span>';
  item.firstChild.style.background = colours[i];
  item.appendChild(document.createTextNode(name + ' (' + data.points.filter(p => p.class === i).length + ')'));
  item.addEventListener('click', () => {
    hidden.has(i) ? hidden.delete(i) : hidden.add(i);
    item.classList.toggle('off');
    draw();
  });
  legend.appendChild(item);
});
draw();
"#;

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}#legend{list-style:none;padding:0;columns:2}\
#legend li{cursor:pointer;margin:2px 0}#legend li.off{opacity:.3}.swatch{display:inline-block;width:12px;\
height:12px;border-radius:6px;margin-right:6px}.row{display:flex;gap:2em;align-items:flex-start}\
canvas{border:1px solid #ddd;cursor:grab}img{max-width:100%}";

fn table(head: &[&str], rows: impl Iterator<Item = Vec<String>>) -> String {
    let mut html = String::from("<table><tr>");
    head.iter().for_each(|h| html.push_str(&format!("<th>{}</th>", escape(h))));
    html.push_str("</tr>");
    for row in rows {
        html.push_str("<tr>");
        row.iter().for_each(|c| html.push_str(&format!("<td>{}</td>", escape(c))));
        html.push_str("</tr>");
    }
    html.push_str("</table>");
    html
}

/// The page, with the variance and accuracy charts (PNG bytes) inline.
pub fn page(
    data: &ReportData,
    run: &str,
    variance_png: &[u8],
    accuracy_png: &[u8],
) -> Result<String, serde_json::Error> {
    let n = data.classes.len();
    let colours: Vec<String> = data
        .classes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let plotters::style::RGBColor(r, g, b) = class_colour(i, n, c);
            format!("rgb({r},{g},{b})")
        })
        .collect();
    let thresholds = table(
        &["share of variance", "components (k)"],
        data.components_for.iter().map(|t| vec![format!("{:.0}%", t.share * 100.0), t.components.to_string()]),
    );
    let accuracy = table(
        &["head reads", "held-out top-1 accuracy", "held-out rows"],
        data.accuracy.iter().map(|a| {
            let what = if a.full { format!("full {}-d embedding", a.k) } else { format!("k = {}", a.k) };
            vec![what, format!("{:.2}%", a.accuracy * 100.0), a.heldout_rows.to_string()]
        }),
    );
    let bytes = table(
        &["values per photo", "encoding", "bytes per photo"],
        data.bytes.iter().map(|b| vec![b.k.to_string(), b.encoding.to_string(), format!("{:.1}", b.bytes_per_photo)]),
    );
    let head = match &data.head {
        Some(h) => format!(
            "<p>Published recognition head: {} classes, temperature {:.3}, unknown below a confidence of {:.3}.{}</p>",
            h.classes.len(),
            h.temperature,
            h.unknown_threshold,
            h.calibration.as_ref().map(calibration_sentence).unwrap_or_default()
        ),
        None => "<p>The published projection carries no recognition head.</p>".into(),
    };
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Fruits PCA report: {run}</title>\n\
<style>{STYLE}</style>\n</head>\n<body>\n<h1>Fruits PCA report: {run}</h1>\n\
<p>Projection v{version}: k = {k} of {dim} dimensions, computed from {rows} embeddings; {points} embeddings plotted.</p>\n\
{head}\n<h2>Every embedding on PC1-3 (drag to rotate, click a fruit to hide it)</h2>\n\
<div class=\"row\"><canvas id=\"scatter\" width=\"760\" height=\"600\"></canvas><ul id=\"legend\"></ul></div>\n\
<h2>Explained variance</h2>\n<img alt=\"scree and cumulative explained variance\" src=\"data:image/png;base64,{variance}\">\n{thresholds}\n\
<h2>Recognition accuracy and upload size vs k</h2>\n<img alt=\"accuracy and bytes per photo vs k\" src=\"data:image/png;base64,{accuracy_b64}\">\n\
{accuracy}\n{bytes}\n\
<script type=\"application/json\" id=\"report-data\">{json}</script>\n\
<script type=\"application/json\" id=\"report-colours\">{colours_json}</script>\n\
<script>{SCRIPT}</script>\n</body>\n</html>\n",
        run = escape(run),
        version = data.projection_version,
        k = data.k,
        dim = data.dim,
        rows = data.pca_rows,
        points = data.points.len(),
        variance = base64(variance_png),
        accuracy_b64 = base64(accuracy_png),
        json = script_json(data)?,
        colours_json = script_json(&colours)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn text_and_json_cannot_break_out_of_the_page() {
        assert_eq!(escape("<b>&\""), "&lt;b&gt;&amp;&quot;");
        assert_eq!(script_json(&"</script>").unwrap(), "\"\\u003c/script>\"");
    }
}
