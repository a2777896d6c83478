//! What the kernels' tests share. Each fused kernel is tested against the same computation
//! from candle's primitive ops, forward and every gradient, on random data; dropout masks are
//! reproduced by dropping a tensor of ones with the same seed (the mask depends on the
//! element index only).

use candle_core::{DType, Device, Tensor, Var};

use super::dropout;
use crate::rng::Rng;

pub(super) fn rand(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).expect("tensor")
}

pub(super) fn close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(a.len(), b.len(), "{what}: sizes");
    let scale = b.iter().fold(1f32, |m, x| m.max(x.abs()));
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= tol * scale,
        "{what}: max |diff| {worst} (scale {scale})"
    );
}

/// Gradients of `sum(f(vars) * r)` for a fixed random `r`.
pub(super) fn grads(vars: &[&Var], out: &Tensor, seed: u64) -> Vec<Tensor> {
    let r = rand(out.dims(), seed);
    let g = (out * r).unwrap().sum_all().unwrap().backward().unwrap();
    vars.iter()
        .map(|v| g.get(v.as_tensor()).expect("gradient").clone())
        .collect()
}

pub(super) fn mask_of(shape: &[usize], p: f32, seed: u64) -> Tensor {
    dropout(
        &Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap(),
        p,
        seed,
    )
    .unwrap()
}
