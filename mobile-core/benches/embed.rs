//! Issue-2 embedding benchmark (not a timed test): prints JSON, driven by
//! `bench/embed/run.sh` / `bench/embed/bench.py`, which runs ONNX Runtime side
//! by side in the same process tree.
//!
//! Usage (single thread, batch 1; every time in milliseconds):
//!   embed serve MANIFEST TENSORS.f32        stdin "run VARIANT K" -> JSON line of K times
//!   embed profile MANIFEST TENSORS.f32 VARIANT ITERS   per-operator time (JSON)
//!   embed cold MANIFEST ITERS [CACHE_DIR]   Embedder load + optimise times (through
//!                                           the plan cache in CACHE_DIR if given)
//!   embed split MANIFEST JPEG ITERS         decode / resize / inference split
//!
//! VARIANT: `symbolic` (batch axis N), `batch1` (concrete batch 1, what `Embedder`
//! runs), `declutter` (symbolic, decluttered only).

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use fruits_core::embedder::{PlanConfig, build_plan};
use fruits_core::{Embedder, EmbedderOptions, InputTensor, ModelManifest, PlanOrigin, PreprocessOptions};
use tract_onnx::prelude::*;
use tract_onnx::tract_core;

type Plan = Arc<TypedRunnableModel>;

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn load_manifest(path: &str) -> (ModelManifest, Vec<u8>) {
    let manifest = ModelManifest::load(Path::new(path)).expect("manifest");
    let bytes = std::fs::read(manifest.model_path(Path::new(path))).expect("model");
    (manifest, bytes)
}

fn variant(name: &str, manifest: &ModelManifest, bytes: &[u8]) -> Plan {
    let config = match name {
        "symbolic" => PlanConfig { batch: None, optimize: true },
        "batch1" => PlanConfig { batch: Some(1), optimize: true },
        "declutter" => PlanConfig { batch: None, optimize: false },
        other => panic!("unknown variant {other}"),
    };
    build_plan(bytes, manifest, config).expect("plan")
}

/// Raw little-endian f32 tensors, each `H*W*C` values (written by bench.py).
fn load_tensors(path: &str, manifest: &ModelManifest) -> Vec<Tensor> {
    let raw = std::fs::read(path).expect("tensors");
    let shape = manifest.input.image_shape();
    let len = manifest.input.image_len();
    let vals: Vec<f32> = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    vals.chunks_exact(len)
        .map(|c| tract_ndarray::Array4::from_shape_vec((1, shape[0], shape[1], shape[2]), c.to_vec()).unwrap().into())
        .collect()
}

fn run_once(plan: &Plan, t: &Tensor) -> f64 {
    let input = tvec!(t.clone().into());
    let s = Instant::now();
    let out = plan.run(input).expect("run");
    let e = ms(s);
    std::hint::black_box(out);
    e
}

fn serve(manifest_path: &str, tensors_path: &str) {
    let (manifest, bytes) = load_manifest(manifest_path);
    let tensors = load_tensors(tensors_path, &manifest);
    let mut plans: BTreeMap<String, Plan> = BTreeMap::new();
    let mut i = 0usize;
    println!("{{\"ready\": true, \"tensors\": {}}}", tensors.len());
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["run", v, k] => {
                let plan = plans.entry(v.to_string()).or_insert_with(|| variant(v, &manifest, &bytes)).clone();
                let k: usize = k.parse().unwrap();
                let times: Vec<f64> = (0..k)
                    .map(|_| {
                        i += 1;
                        run_once(&plan, &tensors[i % tensors.len()])
                    })
                    .collect();
                println!("{}", serde_json::json!({ "variant": v, "ms": times }));
            }
            ["output", v] => {
                // First tensor's embedding, for a parity check against ORT.
                let plan = plans.entry(v.to_string()).or_insert_with(|| variant(v, &manifest, &bytes)).clone();
                let out = plan.run(tvec!(tensors[0].clone().into())).unwrap();
                let v: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
                println!("{}", serde_json::json!({ "embedding": v }));
            }
            ["quit"] | [] => break,
            _ => panic!("bad command {line}"),
        }
    }
}

fn profile(manifest_path: &str, tensors_path: &str, v: &str, iters: usize) {
    let (manifest, bytes) = load_manifest(manifest_path);
    let tensors = load_tensors(tensors_path, &manifest);
    let plan = variant(v, &manifest, &bytes);
    let mut by_node: BTreeMap<usize, (String, String, f64)> = BTreeMap::new();
    let mut state = tract_core::plan::SimpleState::new(&plan).unwrap();
    for it in 0..iters + 3 {
        let warm = it < 3;
        let input = tvec!(tensors[it % tensors.len()].clone().into());
        state
            .run_plan_with_eval(input, |ctx, st, node, inputs| {
                let s = Instant::now();
                let r = tract_core::plan::eval(ctx, st, node, inputs);
                if !warm {
                    let e =
                        by_node.entry(node.id).or_insert_with(|| (node.op.name().to_string(), node.name.clone(), 0.0));
                    e.2 += ms(s);
                }
                r
            })
            .unwrap();
    }
    let mut by_op: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for (op, _, t) in by_node.values() {
        let e = by_op.entry(op.clone()).or_default();
        e.0 += 1;
        e.1 += t / iters as f64;
    }
    let total: f64 = by_op.values().map(|v| v.1).sum();
    let mut nodes: Vec<_> =
        by_node.values().map(|(op, name, t)| (op.clone(), name.clone(), t / iters as f64)).collect();
    nodes.sort_by(|a, b| b.2.total_cmp(&a.2));
    nodes.truncate(12);
    let ops: Vec<_> = by_op
        .iter()
        .map(|(op, (n, t))| serde_json::json!({"op": op, "nodes": n, "ms": t, "share": t / total}))
        .collect();
    println!(
        "{}",
        serde_json::json!({"variant": v, "iters": iters, "total_ms": total, "by_op": ops,
            "top_nodes": nodes.iter().map(|(o, n, t)| serde_json::json!({"op": o, "node": n, "ms": t})).collect::<Vec<_>>(),
            "plan_nodes": plan.model().nodes().len()})
    );
}

/// `iters` `Embedder` loads, through the plan cache in `cache_dir` if given.
/// Per load: its time and the plan's origin; after a load that started a
/// cache write, how much longer that write took (`store_wait_ms`).
fn cold(manifest_path: &str, iters: usize, cache_dir: Option<&str>) {
    let options = EmbedderOptions { plan_cache_dir: cache_dir.map(Into::into), ..Default::default() };
    let (mut times, mut origins, mut store_wait) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..iters {
        let s = Instant::now();
        let e = Embedder::from_manifest_path(Path::new(manifest_path), options.clone()).expect("embedder");
        times.push(ms(s));
        origins.push(format!("{:?}", e.plan_origin()));
        if cache_dir.is_some() && e.plan_origin() == PlanOrigin::Onnx {
            let s = Instant::now();
            assert!(e.wait_for_plan_cache(), "plan cache written");
            store_wait.push(ms(s));
        }
    }
    let med = median(&mut times.clone());
    println!(
        "{}",
        serde_json::json!({"cold_ms": times, "median_ms": med, "origins": origins, "store_wait_ms": store_wait})
    );
}

fn split(manifest_path: &str, jpeg: &str, iters: usize) {
    let bytes = std::fs::read(jpeg).expect("jpeg");
    let mut out = serde_json::Map::new();
    for (label, dct) in [("dct_scaled", true), ("full_decode", false)] {
        let embedder = Embedder::from_manifest_path(
            Path::new(manifest_path),
            EmbedderOptions {
                preprocess: PreprocessOptions { jpeg_dct_scaling: dct, ..Default::default() },
                ..Default::default()
            },
        )
        .expect("embedder");
        let pre = embedder.preprocessor();
        let spec = pre.spec().clone();
        let (mut dec, mut res, mut inf, mut tot) = (vec![], vec![], vec![], vec![]);
        for it in 0..iters + 1 {
            let s0 = Instant::now();
            let img = pre.decode(&bytes).unwrap();
            let t_dec = ms(s0);
            let s1 = Instant::now();
            let small = fruits_core::preprocess::resize_centre_crop(&img, spec.width, spec.height).unwrap();
            let tensor: InputTensor = fruits_core::preprocess::normalise(&small, &spec).unwrap();
            let t_res = ms(s1);
            let s2 = Instant::now();
            let e = embedder.embed_tensor(&tensor).unwrap();
            let t_inf = ms(s2);
            let t_tot = ms(s0);
            std::hint::black_box(e);
            if it > 0 {
                dec.push(t_dec);
                res.push(t_res);
                inf.push(t_inf);
                tot.push(t_tot);
            }
        }
        out.insert(
            label.into(),
            serde_json::json!({
                "decode_ms": median(&mut dec), "resize_normalise_ms": median(&mut res),
                "inference_ms": median(&mut inf), "total_ms": median(&mut tot),
            }),
        );
    }
    println!("{}", serde_json::Value::Object(out));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["serve", m, t] => serve(m, t),
        ["profile", m, t, v, n] => profile(m, t, v, n.parse().unwrap()),
        ["cold", m, n] => cold(m, n.parse().unwrap(), None),
        ["cold", m, n, dir] => cold(m, n.parse().unwrap(), Some(dir)),
        ["split", m, j, n] => split(m, j, n.parse().unwrap()),
        _ => eprintln!("usage: see the header of mobile-core/benches/embed.rs"),
    }
}
