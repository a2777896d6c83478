//! Layers shared by the encoders, over the crate's fused kernels (`kernels`); train mode
//! keeps what backward needs and applies dropout, eval mode does neither.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use candle_core::{DType, Device, Result, Tensor, D};

use crate::kernels;
use crate::packed::{self, PackedMatrix};
use crate::rng::Rng;

pub use crate::kernels::Activation;

/// Named parameters in Hugging Face naming, ordered by name.
pub type Weights = BTreeMap<String, Tensor>;

/// How a forward pass runs.
pub struct Ctx {
    /// Train mode: kernels keep what backward needs; layer norm runs our kernel with backward.
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

    /// Inverted dropout with probability `p`; identity in eval mode or when `p == 0`. Each
    /// call draws a fresh seed; the mask is regenerated from it in backward, never stored.
    pub fn dropout(&self, xs: &Tensor, p: f32) -> Result<Tensor> {
        if !(self.train && self.dropout) || p <= 0.0 {
            return Ok(xs.clone());
        }
        let seed = self.rng.borrow_mut().next_u64();
        kernels::dropout(xs, p, seed)
    }

    /// `(p, seed)` for a fused kernel's dropout: a fresh seed when dropout is on in train
    /// mode and `p > 0`, else `(0, 0)` (no dropout).
    pub fn dropout_args(&self, p: f32) -> (f32, u64) {
        if self.train && self.dropout && p > 0.0 {
            (p, self.rng.borrow_mut().next_u64())
        } else {
            (0.0, 0)
        }
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
    /// `w` packed for the packed products ([`Linear::pack`]); only for weights that no
    /// longer change.
    packed: Option<Arc<PackedMatrix>>,
}

impl Linear {
    /// Loads `{prefix}.weight` and `{prefix}.bias`.
    pub fn load(w: &Weights, prefix: &str, inp: usize, out: usize) -> Result<Self> {
        Ok(Self {
            w: param(w, &format!("{prefix}.weight"), &[out, inp])?,
            b: param(w, &format!("{prefix}.bias"), &[out])?,
            packed: None,
        })
    }

    /// Applies the layer to `(.., in)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        kernels::linear(
            x,
            &self.w,
            self.packed.as_ref(),
            &self.b,
            Activation::Identity,
            (0.0, 0),
            false,
        )
    }

    /// `dropout(act(x Wᵀ + b))` in one fused op; dropout only in train mode.
    pub fn forward_act(
        &self,
        x: &Tensor,
        act: Activation,
        dropout: f32,
        ctx: &Ctx,
    ) -> Result<Tensor> {
        kernels::linear(
            x,
            &self.w,
            self.packed.as_ref(),
            &self.b,
            act,
            ctx.dropout_args(dropout),
            ctx.train,
        )
    }

    /// The layers' weights stacked along the output dimension (one layer computing all
    /// their outputs side by side); differentiable, so gradients reach each part.
    pub fn stack(layers: &[&Linear]) -> Result<Linear> {
        let ws: Vec<&Tensor> = layers.iter().map(|l| &l.w).collect();
        let bs: Vec<&Tensor> = layers.iter().map(|l| &l.b).collect();
        Ok(Linear {
            w: Tensor::cat(&ws, 0)?,
            b: Tensor::cat(&bs, 0)?,
            packed: None,
        })
    }

    /// Packs the weight once for the packed products, where this CPU multiplies such a layer
    /// through them ([`crate::kernels::packs`]; a no-op elsewhere). Only for a layer whose
    /// weight will not change: an inference model, never one being trained.
    pub fn pack(&mut self) -> Result<()> {
        let (out, inp) = self.w.dims2()?;
        if packed::isa().is_some_and(|isa| crate::kernels::packs(isa, inp, out)) {
            let w: Vec<f32> = self.w.flatten_all()?.to_vec1()?;
            self.packed = Some(Arc::new(PackedMatrix::from_weight(&w, out, inp)));
        }
        Ok(())
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

    /// Normalises `x` with our fused kernel (it has a backward, which only train mode uses).
    pub fn forward(&self, x: &Tensor, _ctx: &Ctx) -> Result<Tensor> {
        kernels::layer_norm(x, &self.w, &self.b, self.eps)
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
