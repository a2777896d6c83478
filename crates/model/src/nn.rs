//! Layers shared by the encoders, each with a train path (differentiable ops only) and an
//! eval path (fused kernels allowed).

use std::cell::RefCell;
use std::collections::BTreeMap;

use candle_core::{DType, Device, Result, Tensor, D};

use crate::rng::Rng;

/// Named parameters in Hugging Face naming, ordered by name.
pub type Weights = BTreeMap<String, Tensor>;

/// How a forward pass runs.
pub struct Ctx {
    /// Train mode: layer norm and softmax are built from differentiable ops.
    pub train: bool,
    /// Apply dropout (only meaningful in train mode).
    pub dropout: bool,
    /// Source of dropout masks.
    pub rng: RefCell<Rng>,
}

impl Ctx {
    /// Eval mode: fused kernels, no dropout.
    pub fn eval() -> Self {
        Self {
            train: false,
            dropout: false,
            rng: RefCell::new(Rng::new(0)),
        }
    }

    /// Train mode with dropout drawn from `seed`.
    pub fn train(seed: u64, dropout: bool) -> Self {
        Self {
            train: true,
            dropout,
            rng: RefCell::new(Rng::new(seed)),
        }
    }

    /// Inverted dropout with probability `p`; identity in eval mode or when `p == 0`.
    pub fn dropout(&self, xs: &Tensor, p: f32) -> Result<Tensor> {
        if !(self.train && self.dropout) || p <= 0.0 {
            return Ok(xs.clone());
        }
        let n = xs.elem_count();
        let keep = 1.0 / (1.0 - p);
        let mut rng = self.rng.borrow_mut();
        let mask: Vec<f32> = (0..n)
            .map(|_| if rng.uniform() < p as f64 { 0.0 } else { keep })
            .collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        xs.mul(&mask)
    }

    /// Softmax over the last dimension.
    pub fn softmax(&self, xs: &Tensor) -> Result<Tensor> {
        if self.train {
            let max = xs.max_keepdim(D::Minus1)?.detach();
            let e = xs.broadcast_sub(&max)?.exp()?;
            e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
        } else {
            candle_nn::ops::softmax_last_dim(xs)
        }
    }
}

/// Fetches `name` from `w`, checking its shape.
pub fn param(w: &Weights, name: &str, shape: &[usize]) -> Result<Tensor> {
    let t = w
        .get(name)
        .ok_or_else(|| candle_core::Error::Msg(format!("missing weight {name}")))?;
    if t.dims() != shape {
        candle_core::bail!("weight {name} has shape {:?}, expected {shape:?}", t.dims());
    }
    Ok(t.clone())
}

/// `y = x Wᵀ + b` with a Hugging Face `(out, in)` weight.
#[derive(Clone)]
pub struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(w: &Weights, prefix: &str, inp: usize, out: usize) -> Result<Self> {
        Ok(Self {
            w: param(w, &format!("{prefix}.weight"), &[out, inp])?,
            b: param(w, &format!("{prefix}.bias"), &[out])?,
        })
    }

    /// Applies the layer to `(.., in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = *dims.last().expect("non-scalar input");
        let rows = x.elem_count() / inp;
        let y = x
            .reshape((rows, inp))?
            .matmul(&self.w.t()?)?
            .broadcast_add(&self.b)?;
        let mut out_dims = dims;
        *out_dims.last_mut().expect("non-scalar") = self.w.dim(0)?;
        y.reshape(out_dims)
    }
}

/// Layer normalisation over the last dimension.
#[derive(Clone)]
pub struct LayerNorm {
    w: Tensor,
    b: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(w: &Weights, prefix: &str, size: usize, eps: f64) -> Result<Self> {
        Ok(Self {
            w: param(w, &format!("{prefix}.weight"), &[size])?,
            b: param(w, &format!("{prefix}.bias"), &[size])?,
            eps,
        })
    }

    /// Normalises `x`; differentiable in train mode, fused in eval mode.
    pub fn forward(&self, x: &Tensor, ctx: &Ctx) -> Result<Tensor> {
        if ctx.train {
            let mean = x.mean_keepdim(D::Minus1)?;
            let xc = x.broadcast_sub(&mean)?;
            let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
            let xn = xc.broadcast_div(&(var + self.eps)?.sqrt()?)?;
            xn.broadcast_mul(&self.w)?.broadcast_add(&self.b)
        } else {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, self.eps as f32)
        }
    }
}

/// Embedding lookup `(B, T)` ids → `(B, T, H)`.
pub fn embed(table: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let (b, t) = ids.dims2()?;
    let h = table.dim(1)?;
    table
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((b, t, h))
}

/// Exact (erf) GELU, as Hugging Face's `gelu`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    x.gelu_erf()
}

/// A padded batch of token ids ready for an encoder.
pub struct Batch {
    /// `(B, T)` u32 token ids, right-padded.
    pub ids: Tensor,
    /// `(B, 1, 1, T)` additive attention mask: 0 for tokens, `f32::MIN` for padding.
    pub mask: Tensor,
    /// Number of real tokens per row.
    pub lengths: Vec<usize>,
}

impl Batch {
    /// Pads `seqs` on the right with `pad_id` to the longest one.
    pub fn new(seqs: &[&[u32]], pad_id: u32, device: &Device) -> Result<Self> {
        let b = seqs.len();
        let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(b * t);
        let mut mask = Vec::with_capacity(b * t);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(pad_id, t - s.len()));
            mask.extend(std::iter::repeat_n(0f32, s.len()));
            mask.extend(std::iter::repeat_n(f32::MIN, t - s.len()));
        }
        Ok(Self {
            ids: Tensor::from_vec(ids, (b, t), device)?,
            mask: Tensor::from_vec(mask, (b, 1, 1, t), device)?,
            lengths: seqs.iter().map(|s| s.len()).collect(),
        })
    }

    /// Mean over real tokens of `hidden` `(B, T, H)` → `(B, H)`.
    pub fn mean_pool(&self, hidden: &Tensor) -> Result<Tensor> {
        let (b, t, _) = hidden.dims3()?;
        let mut m = Vec::with_capacity(b * t);
        for &len in &self.lengths {
            m.extend(std::iter::repeat_n(1f32 / len.max(1) as f32, len));
            m.extend(std::iter::repeat_n(0f32, t - len));
        }
        let m = Tensor::from_vec(m, (b, t, 1), hidden.device())?.to_dtype(hidden.dtype())?;
        hidden.broadcast_mul(&m)?.sum(1)
    }
}

/// f32 everywhere for now.
pub const DTYPE: DType = DType::F32;
