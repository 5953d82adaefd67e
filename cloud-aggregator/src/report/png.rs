//! The report's pictures, drawn with `plotters` into RGB buffers and encoded as
//! PNG. Text is rendered by ab_glyph from one TrueType font (no system font
//! libraries): [`register_font`] must succeed before anything is drawn.

use super::data::{ReportData, UNLABELLED};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, HSLColor};
use std::sync::OnceLock;

/// Why a picture could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DrawError {
    /// No usable font.
    #[error("no TrueType font for the report's text: {0}")]
    Font(String),
    /// plotters refused to draw.
    #[error("drawing {picture}: {detail}")]
    Draw {
        /// Which picture.
        picture: &'static str,
        /// plotters' message.
        detail: String,
    },
    /// PNG encoding failed.
    #[error("encoding {picture}: {source}")]
    Encode {
        /// Which picture.
        picture: &'static str,
        /// The cause.
        source: image::ImageError,
    },
}

/// Family name the charts ask for.
const FAMILY: &str = "sans-serif";
static FONT: OnceLock<Result<(), String>> = OnceLock::new();

/// Registers `bytes` (a TrueType font) as the charts' font, once per process; later
/// calls return the first call's outcome.
pub fn register_font(bytes: Vec<u8>) -> Result<(), DrawError> {
    FONT.get_or_init(|| {
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font(FAMILY, FontStyle::Normal, bytes).map_err(|_| "not a TrueType font".to_string())
    })
    .clone()
    .map_err(DrawError::Font)
}

/// The colour of class `i` of `n`: evenly spaced hues; unlabelled rows are grey.
pub fn class_colour(i: usize, n: usize, name: &str) -> RGBColor {
    if name == UNLABELLED {
        return RGBColor(150, 150, 150);
    }
    let hsl = HSLColor(i as f64 / n.max(1) as f64, 0.75, if i.is_multiple_of(2) { 0.45 } else { 0.35 });
    let (r, g, b) = hsl.rgb();
    RGBColor(r, g, b)
}

fn draw_err<E: std::fmt::Debug>(picture: &'static str) -> impl Fn(E) -> DrawError {
    move |e| DrawError::Draw { picture, detail: format!("{e:?}") }
}

fn encode(picture: &'static str, buffer: Vec<u8>, (w, h): (u32, u32)) -> Result<Vec<u8>, DrawError> {
    let image = image::RgbImage::from_raw(w, h, buffer)
        .ok_or_else(|| DrawError::Draw { picture, detail: "buffer size".into() })?;
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| DrawError::Encode { picture, source })?;
    Ok(png)
}

fn render(
    picture: &'static str,
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), DrawError>,
) -> Result<Vec<u8>, DrawError> {
    let mut buffer = vec![255u8; (size.0 * size.1 * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, size).into_drawing_area();
        draw(&root)?;
        root.present().map_err(draw_err(picture))?;
    }
    encode(picture, buffer, size)
}

fn range(values: impl Iterator<Item = f32>) -> std::ops::Range<f64> {
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if !lo.is_finite() || hi <= lo {
        return -1.0..1.0;
    }
    let pad = f64::from(hi - lo) * 0.05;
    f64::from(lo) - pad..f64::from(hi) + pad
}

/// Every embedding on PC1-3, coloured by class, with a legend.
pub fn scatter_3d(data: &ReportData) -> Result<Vec<u8>, DrawError> {
    const PICTURE: &str = "the 3-D scatter";
    let err = draw_err(PICTURE);
    render(PICTURE, (1100, 800), |root| {
        root.fill(&WHITE).map_err(&err)?;
        let (plot, legend) = root.split_horizontally(860);
        let axis = |i: usize| range(data.points.iter().map(|p| p.pc[i]));
        let ratio = |i: usize| data.scree.get(i).map_or(0.0, |s| s.ratio * 100.0);
        let caption = format!(
            "{} embeddings on the first three principal components (projection v{})",
            data.points.len(),
            data.projection_version
        );
        let mut chart = ChartBuilder::on(&plot)
            .caption(caption, (FAMILY, 22))
            .margin(10)
            .build_cartesian_3d(axis(0), axis(2), axis(1))
            .map_err(&err)?;
        chart.with_projection(|mut p| {
            p.yaw = 0.6;
            p.pitch = 0.35;
            p.scale = 0.85;
            p.into_matrix()
        });
        chart
            .configure_axes()
            .light_grid_style(BLACK.mix(0.1))
            .max_light_lines(4)
            .label_style((FAMILY, 13))
            .x_formatter(&|v| format!("{v:.0}"))
            .y_formatter(&|v| format!("{v:.0}"))
            .z_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(&err)?;
        let n = data.classes.len();
        chart
            .draw_series(data.points.iter().map(|p| {
                let c = p.class as usize;
                let colour = class_colour(c, n, &data.classes[c]);
                Circle::new((f64::from(p.pc[0]), f64::from(p.pc[2]), f64::from(p.pc[1])), 3, colour.mix(0.8).filled())
            }))
            .map_err(&err)?;
        let axes_note =
            format!("x: PC1 ({:.1}%)   y: PC2 ({:.1}%)   depth: PC3 ({:.1}%)", ratio(0), ratio(1), ratio(2));
        plot.draw(&Text::new(axes_note, (20, 770), (FAMILY, 15).into_font().color(&BLACK))).map_err(&err)?;
        legend.draw(&Text::new("Fruit", (10, 40), (FAMILY, 18).into_font().color(&BLACK))).map_err(&err)?;
        for (i, class) in data.classes.iter().enumerate() {
            let y = 70 + i as i32 * 24;
            legend.draw(&Circle::new((18, y + 7), 6, class_colour(i, n, class).filled())).map_err(&err)?;
            legend.draw(&Text::new(class.clone(), (32, y), (FAMILY, 15).into_font().color(&BLACK))).map_err(&err)?;
        }
        Ok(())
    })
}

/// Scree plot and cumulative explained variance with the 90/95/99% marks.
pub fn variance(data: &ReportData) -> Result<Vec<u8>, DrawError> {
    const PICTURE: &str = "the variance curves";
    let err = draw_err(PICTURE);
    render(PICTURE, (1100, 450), |root| {
        root.fill(&WHITE).map_err(&err)?;
        let (left, right) = root.split_horizontally(550);
        let k = data.scree.len().max(1) as f64;
        let top = data.scree.first().map_or(1.0, |s| s.ratio) * 1.1;
        let mut scree = ChartBuilder::on(&left)
            .caption("Scree: variance share per component", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5..k + 0.5, 0.0..top)
            .map_err(&err)?;
        scree
            .configure_mesh()
            .x_desc("component")
            .y_desc("share of variance")
            .label_style((FAMILY, 12))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(&err)?;
        let points: Vec<(f64, f64)> = data.scree.iter().map(|s| (f64::from(s.component), s.ratio)).collect();
        scree.draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2))).map_err(&err)?;
        scree.draw_series(points.iter().map(|&p| Circle::new(p, 3, BLUE.filled()))).map_err(&err)?;
        let mut cumulative = ChartBuilder::on(&right)
            .caption("Cumulative explained variance", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5..k + 0.5, 0.0..1.0)
            .map_err(&err)?;
        cumulative
            .configure_mesh()
            .x_desc("components kept (k)")
            .y_desc("share of variance")
            .label_style((FAMILY, 12))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(&err)?;
        let curve: Vec<(f64, f64)> = data.scree.iter().map(|s| (f64::from(s.component), s.cumulative)).collect();
        cumulative.draw_series(LineSeries::new(curve, RED.stroke_width(2))).map_err(&err)?;
        for t in &data.components_for {
            let x = f64::from(t.components);
            let label = format!("{:.0}%: k = {}", t.share * 100.0, t.components);
            let style = BLACK.mix(0.5);
            cumulative.draw_series(LineSeries::new([(0.5, t.share), (k + 0.5, t.share)], style)).map_err(&err)?;
            if x <= k {
                cumulative.draw_series(LineSeries::new([(x, 0.0), (x, t.share)], style)).map_err(&err)?;
            }
            let at = (0.5 + k * 0.45, t.share - 0.05);
            cumulative.draw_series([Text::new(label, at, (FAMILY, 13).into_font())]).map_err(&err)?;
        }
        Ok(())
    })
}

/// Accuracy of heads over `k` (and the full-embedding head), and bytes per photo.
pub fn accuracy(data: &ReportData) -> Result<Vec<u8>, DrawError> {
    const PICTURE: &str = "the accuracy and size curves";
    let err = draw_err(PICTURE);
    render(PICTURE, (1100, 450), |root| {
        root.fill(&WHITE).map_err(&err)?;
        let (left, right) = root.split_horizontally(550);
        let x_max = f64::from(data.dim) * 1.2;
        let mut acc = ChartBuilder::on(&left)
            .caption("Held-out top-1 accuracy vs k", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d((1f64..x_max).log_scale(), 0.0..1.02)
            .map_err(&err)?;
        acc.configure_mesh()
            .x_desc("codes read by the head (k, log scale)")
            .y_desc("accuracy")
            .label_style((FAMILY, 12))
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(&err)?;
        let curve: Vec<(f64, f64)> =
            data.accuracy.iter().filter(|a| !a.full).map(|a| (f64::from(a.k), a.accuracy)).collect();
        acc.draw_series(LineSeries::new(curve.clone(), BLUE.stroke_width(2))).map_err(&err)?;
        acc.draw_series(curve.iter().map(|&p| Circle::new(p, 3, BLUE.filled()))).map_err(&err)?;
        for full in data.accuracy.iter().filter(|a| a.full) {
            let p = (f64::from(full.k), full.accuracy);
            acc.draw_series([Circle::new(p, 5, RED.filled())]).map_err(&err)?;
            let label = format!("full {}-d: {:.1}%", full.k, full.accuracy * 100.0);
            acc.draw_series([Text::new(
                label,
                (f64::from(full.k) / 12.0, full.accuracy - 0.08),
                (FAMILY, 13).into_font(),
            )])
            .map_err(&err)?;
        }
        let max_bytes = data.bytes.iter().map(|b| b.bytes_per_photo).fold(1.0, f64::max) * 1.5;
        let mut bytes = ChartBuilder::on(&right)
            .caption("Upload bytes per photo", (FAMILY, 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(55)
            .build_cartesian_2d((1f64..x_max).log_scale(), (1f64..max_bytes).log_scale())
            .map_err(&err)?;
        bytes
            .configure_mesh()
            .x_desc("values per photo (log scale)")
            .y_desc("bytes (log scale)")
            .label_style((FAMILY, 12))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(&err)?;
        let codes: Vec<(f64, f64)> = data
            .bytes
            .iter()
            .filter(|b| b.encoding == "f16 codes")
            .map(|b| (f64::from(b.k), b.bytes_per_photo))
            .collect();
        bytes.draw_series(LineSeries::new(codes.clone(), BLUE.stroke_width(2))).map_err(&err)?;
        bytes.draw_series(codes.iter().map(|&p| Circle::new(p, 3, BLUE.filled()))).map_err(&err)?;
        for (i, full) in data.bytes.iter().filter(|b| b.encoding != "f16 codes").enumerate() {
            let p = (f64::from(full.k), full.bytes_per_photo);
            bytes.draw_series([Circle::new(p, 5, RED.filled())]).map_err(&err)?;
            let label = format!("{}: {:.0} B", full.encoding, full.bytes_per_photo);
            let at = (f64::from(full.k) / 40.0, full.bytes_per_photo * if i == 0 { 0.55 } else { 1.25 });
            bytes.draw_series([Text::new(label, at, (FAMILY, 13).into_font())]).map_err(&err)?;
        }
        Ok(())
    })
}
