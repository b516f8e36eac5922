//! Deterministic click protocol: hand-worked masks, the EDT against
//! `scipy.ndimage.distance_transform_edt`, and clicks against a scipy reference
//! (fixtures from tools/make_stats_fixtures.py).
use ruac_core::eval::clicks::{
    connected_components, distance_transform, distance_transform_sq, first_click, gt_box, next_click,
    run_click_protocol, Click, CLICK_COUNTS,
};
use ruac_core::predictor::PointLabel;
use serde::Deserialize;

/// Mask from ASCII art: `#` foreground, anything else background.
fn art(rows: &[&str]) -> (Vec<bool>, usize, usize) {
    let w = rows[0].len();
    assert!(rows.iter().all(|r| r.len() == w));
    (rows.iter().flat_map(|r| r.bytes().map(|b| b == b'#')).collect(), w, rows.len())
}

fn click(x: usize, y: usize, positive: bool) -> Click {
    Click { x: x as f32, y: y as f32, positive }
}

fn decode_rle(runs: &[usize], len: usize) -> Vec<bool> {
    let mut m = Vec::with_capacity(len);
    for (i, &r) in runs.iter().enumerate() {
        m.extend(std::iter::repeat_n(i % 2 == 1, r));
    }
    assert_eq!(m.len(), len);
    m
}

#[test]
fn square_gives_its_centre() {
    let (gt, w, h) = art(&[".........", ".#####...", ".#####...", ".#####...", ".#####...", ".#####...", "........."]);
    assert_eq!(first_click(&gt, w, h), Some(click(3, 3, true)));
    assert_eq!(gt_box(&gt, w, h), Some([1.0, 1.0, 6.0, 6.0]));
    // distances: 1 on the rim, 2 inside it, 3 at the centre
    let d = distance_transform_sq(&gt, w, h);
    assert_eq!((d[w + 1], d[2 * w + 2], d[3 * w + 3], d[0]), (1, 4, 9, 0));
}

#[test]
fn border_counts_as_outside() {
    // A full 5x5 image: the padded border makes the centre the deepest point.
    let gt = vec![true; 25];
    assert_eq!(first_click(&gt, 5, 5), Some(click(2, 2, true)));
    assert_eq!(gt_box(&gt, 5, 5), Some([0.0, 0.0, 5.0, 5.0]));
    assert_eq!(distance_transform(&gt, 5, 5)[0], 1.0);
}

#[test]
fn ties_go_to_the_first_pixel_in_row_major_order() {
    // 4x2 rectangle: every pixel is at distance 1; the first one wins.
    let (gt, w, h) = art(&["......", ".####.", ".####.", "......"]);
    assert_eq!(first_click(&gt, w, h), Some(click(1, 1, true)));
    // 3x6 bar: the column x = 2 has distance 2 in rows 2, 3; row 2 wins.
    let (gt, w, h) = art(&[".....", ".###.", ".###.", ".###.", ".###.", ".###.", ".###.", "....."]);
    assert_eq!(first_click(&gt, w, h), Some(click(2, 2, true)));
}

#[test]
fn l_shape_and_ring() {
    // L: thick vertical bar 4 wide, thin foot; deepest point inside the bar.
    let (gt, w, h) = art(&[
        "............",
        ".####.......",
        ".####.......",
        ".####.......",
        ".####.......",
        ".####.......",
        ".##########.",
        "............",
    ]);
    let c = first_click(&gt, w, h).unwrap();
    assert!(c.positive && gt[c.y as usize * w + c.x as usize]);
    assert_eq!((c.x, c.y), (2.0, 2.0)); // distance 2 (first of the ties in row-major order)
                                        // Ring: the hole is outside, so the click lands in the ring, never in the hole.
    let (ring, w, h) = art(&[
        "...........",
        ".#########.",
        ".#########.",
        ".##.....##.",
        ".##.....##.",
        ".##.....##.",
        ".#########.",
        ".#########.",
        "...........",
    ]);
    let c = first_click(&ring, w, h).unwrap();
    assert!(ring[c.y as usize * w + c.x as usize]);
    assert_eq!((c.x, c.y), (2.0, 2.0));
    assert_eq!(gt_box(&ring, w, h), Some([1.0, 1.0, 10.0, 8.0]));
}

#[test]
fn larger_false_negative_region_gets_a_positive_click() {
    let (gt, w, h) = art(&[
        "............",
        ".#######....",
        ".#######....",
        ".#######....",
        ".#######....",
        "............",
        "............",
    ]);
    // prediction: the left 3 columns of the object (missed 4x4 block on the right) and a
    // 2x2 false blob bottom-right
    let (pred, _, _) = art(&[
        "............",
        ".###........",
        ".###........",
        ".###........",
        ".###........",
        "..........##",
        "..........##",
    ]);
    let c = next_click(&gt, &pred, w, h).unwrap();
    assert!(c.positive);
    assert_eq!((c.x, c.y), (5.0, 2.0)); // centre-most of the 4x4 missed block (first of 4 ties)
    assert_eq!(c.label(), PointLabel::Positive);
    assert_eq!(c.as_point(), (5.0, 2.0, PointLabel::Positive));
}

#[test]
fn larger_false_positive_region_gets_a_negative_click() {
    let (gt, w, h) = art(&["..........", ".##.......", ".##.......", "..........", ".........."]);
    let (pred, _, _) = art(&["..........", ".#........", ".##..#####", ".....#####", ".....#####"]);
    let c = next_click(&gt, &pred, w, h).unwrap();
    assert_eq!(c, click(6, 3, false));
    assert_eq!(c.label(), PointLabel::Negative);
}

#[test]
fn equal_sizes_prefer_the_missed_region() {
    let (gt, w, h) = art(&["##....", "##....", "......"]);
    let (pred, _, _) = art(&["......", "......", "....##"]);
    // FN: 4 pixels, FP: 2 pixels -> FN; now make them equal
    assert!(next_click(&gt, &pred, w, h).unwrap().positive);
    let (pred, _, _) = art(&["....##", "....##", "......"]);
    let c = next_click(&gt, &pred, w, h).unwrap();
    assert_eq!(c, click(0, 0, true));
}

#[test]
fn diagonal_pixels_form_one_region() {
    // 8-connectivity: the diagonal FN chain (3 pixels) beats the 2-pixel FP bar.
    let (gt, w, h) = art(&["#.....", ".#....", "..#...", "......"]);
    let (pred, _, _) = art(&["......", "......", "......", "...##."]);
    let c = next_click(&gt, &pred, w, h).unwrap();
    assert_eq!(c, click(0, 0, true));
    let (labels, sizes) = connected_components(&gt, w, h);
    assert_eq!(sizes, vec![3]);
    assert_eq!(labels[2 * w + 2], 1);
}

#[test]
fn perfect_prediction_and_empty_gt() {
    let (gt, w, h) = art(&["......", ".###..", ".###..", "......"]);
    assert_eq!(next_click(&gt, &gt, w, h), None);
    let empty = vec![false; w * h];
    assert_eq!(first_click(&empty, w, h), None);
    assert_eq!(gt_box(&empty, w, h), None);
    assert_eq!(next_click(&empty, &empty, w, h), None);
    // empty ground truth, non-empty prediction: a negative click on the false object
    assert_eq!(next_click(&empty, &gt, w, h), Some(click(1, 1, false)));
}

#[test]
fn protocol_runs_and_stops_when_perfect() {
    let (gt, w, h) = art(&["........", ".######.", ".######.", ".######.", "........"]);
    // A "model" that predicts the bounding box of its positive clicks, grown by one pixel
    // and cut to the image, minus pixels near negative clicks.
    let mut calls = 0;
    let run = run_click_protocol(&gt, w, h, 5, |clicks| {
        calls += 1;
        assert_eq!(clicks.len(), calls);
        let mut m = vec![false; w * h];
        for c in clicks.iter().filter(|c| c.positive) {
            let (cx, cy) = (c.x as i64, c.y as i64);
            for y in (cy - 1).max(0)..=(cy + 1).min(h as i64 - 1) {
                for x in (cx - 1).max(0)..=(cx + 1).min(w as i64 - 1) {
                    m[y as usize * w + x as usize] = true;
                }
            }
        }
        for c in clicks.iter().filter(|c| !c.positive) {
            m[c.y as usize * w + c.x as usize] = false;
        }
        Ok(m)
    })
    .unwrap();
    assert_eq!(run.clicks[0], first_click(&gt, w, h).unwrap());
    assert!(run.clicks.len() <= 5 && run.clicks.len() == run.predictions.len());
    for k in 1..run.clicks.len() {
        assert_eq!(Some(run.clicks[k]), next_click(&gt, &run.predictions[k - 1], w, h));
    }
    for k in CLICK_COUNTS {
        assert!(run.after(k).is_some());
    }
    // stops early once perfect
    let run = run_click_protocol(&gt, w, h, 5, |_| Ok(gt.clone())).unwrap();
    assert_eq!(run.clicks.len(), 1);
    assert_eq!(run.after(5), Some(&gt[..]));
    // wrong-size prediction is an error; empty gt gives an empty run
    assert!(run_click_protocol(&gt, w, h, 3, |_| Ok(vec![true; 3])).is_err());
    let run = run_click_protocol(&vec![false; w * h], w, h, 3, |_| unreachable!()).unwrap();
    assert!(run.clicks.is_empty() && run.after(1).is_none());
}

#[derive(Deserialize)]
struct EdtFixture {
    cases: Vec<EdtCase>,
}

#[derive(Deserialize)]
struct EdtCase {
    name: String,
    h: usize,
    w: usize,
    rle: Vec<usize>,
    edt_sq: Vec<u32>,
    argmax: Option<usize>,
}

#[derive(Deserialize)]
struct ClickFixture {
    cases: Vec<ClickCase>,
}

#[derive(Deserialize)]
struct ClickCase {
    name: String,
    h: usize,
    w: usize,
    gt_rle: Vec<usize>,
    pred_rle: Vec<usize>,
    first: Option<RefClick>,
    next: Option<RefClick>,
}

#[derive(Deserialize)]
struct RefClick {
    x: usize,
    y: usize,
    positive: bool,
}

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/stats/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn edt_matches_scipy() {
    let fx: EdtFixture = serde_json::from_str(&read("edt.json")).unwrap();
    assert!(fx.cases.len() >= 4);
    for c in &fx.cases {
        let m = decode_rle(&c.rle, c.w * c.h);
        let d = distance_transform_sq(&m, c.w, c.h);
        assert_eq!(d, c.edt_sq, "{}", c.name);
        let fc = first_click(&m, c.w, c.h);
        assert_eq!(fc.map(|k| k.y as usize * c.w + k.x as usize), c.argmax, "{}", c.name);
    }
}

#[test]
fn clicks_match_scipy_reference() {
    let fx: ClickFixture = serde_json::from_str(&read("clicks.json")).unwrap();
    assert!(fx.cases.len() >= 6);
    let to_click = |r: &Option<RefClick>| r.as_ref().map(|r| click(r.x, r.y, r.positive));
    let mut negatives = 0;
    for c in &fx.cases {
        let gt = decode_rle(&c.gt_rle, c.w * c.h);
        let pred = decode_rle(&c.pred_rle, c.w * c.h);
        assert_eq!(first_click(&gt, c.w, c.h), to_click(&c.first), "{}: first", c.name);
        let next = next_click(&gt, &pred, c.w, c.h);
        assert_eq!(next, to_click(&c.next), "{}: next", c.name);
        negatives += next.is_some_and(|k| !k.positive) as usize;
    }
    assert!(negatives >= 2 && negatives < fx.cases.len(), "both kinds of click are exercised");
}
