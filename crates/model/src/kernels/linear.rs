//! Linear layers: `y = dropout(act(x Wᵀ + b))` in one op, with its backward.

use std::sync::Arc;

use candle_core::{bail, CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::dropout::drop_in_place;
use super::fastmath::{gelu_grad_in_place, gelu_in_place};
use super::gemm::{matmul, View};
use super::{add_into, rows_per_task, slice, tensor, with_data};
use crate::packed::{self, PackedMatrix};
use crate::simd::multiversion;

/// What follows the affine map in a linear layer ([`crate::nn::Linear::forward_act`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Nothing.
    Identity,
    /// Exact (erf) GELU, as Hugging Face's `gelu`.
    Gelu,
}

/// Rows up to which a linear layer multiplies through [`packed::matmul`] where it runs; the
/// `gemm` crate takes larger products, where its packing of both operands pays for itself.
/// Chosen from `cargo run --release -p model --example matmul` on MiniLM's shapes; the
/// figures are in `BENCHMARKS-MODEL.md`, "Kernel timings formerly in code comments".
pub const PACKED_MAX_ROWS: usize = 512;

/// Whether a linear layer of `inp` → `out` features multiplies through [`packed::matmul`] on
/// `isa` (up to [`PACKED_MAX_ROWS`] rows). On AVX-512, every layer. On AVX2 and NEON only the
/// deep, narrow ones (`inp ≥ 2 · out`: the feed-forward output, 1536 → 384 in MiniLM), where
/// the `gemm` crate, packing the weight again on every call, runs at half its speed and the
/// packed product at twice it; for the other shapes the 6 × 16 tile reaches 0.8-0.9× of the
/// `gemm` crate (measured on an AVX-512 machine with the AVX2 tile against the gemm crate's
/// AVX-512 kernels, `BENCH_ISA=avx2 cargo run --release -p model --example matmul`; NEON:
/// not measured, no arm64 machine, so the same rule). `BENCHMARKS-MODEL.md` has the figures.
pub fn packs(isa: packed::Isa, inp: usize, out: usize) -> bool {
    isa == packed::Isa::Avx512 || inp >= 2 * out
}

struct LinearOp {
    act: Activation,
    /// Dropout probability and seed applied to the output; `p == 0` for none.
    dropout: (f32, u64),
    /// Keep what backward needs (the pre-activation for GELU).
    train: bool,
    /// The weight packed for [`packed::matmul`], when the model was prepared for inference.
    packed: Option<Arc<PackedMatrix>>,
    pre: std::sync::Mutex<Vec<f32>>,
}

impl LinearOp {
    fn dims(x: &Layout, w: &Layout) -> Result<(usize, usize, usize)> {
        let (wd, xd) = (w.dims(), x.dims());
        let inp = *xd.last().unwrap_or(&0);
        if wd.len() != 2 || wd[1] != inp {
            bail!("linear: input {xd:?} does not fit weight {wd:?}");
        }
        Ok((x.shape().elem_count() / inp.max(1), inp, wd[0]))
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, inp, out) = Self::dims(l1, l2)?;
        let (x, w, b) = (slice(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        let isa = packed::isa().filter(|&isa| rows <= PACKED_MAX_ROWS && packs(isa, inp, out));
        let y = if let Some(isa) = isa {
            let fresh;
            let pw = match &self.packed {
                Some(pw) if pw.k() == inp && pw.n() == out => pw.as_ref(),
                _ => {
                    fresh = PackedMatrix::from_weight(w, out, inp);
                    &fresh
                }
            };
            let mut y = Vec::with_capacity(rows * out);
            // SAFETY: isa from isa(); x is rows×inp and y has room for rows×out, distinct. The
            // product writes every element of y without reading it, so y is initialised.
            unsafe {
                packed::matmul(
                    isa,
                    rows,
                    x.as_ptr(),
                    inp,
                    pw,
                    y.as_mut_ptr(),
                    out,
                    false,
                    true,
                );
                y.set_len(rows * out);
            }
            y
        } else {
            let mut y = vec![0f32; rows * out];
            // SAFETY: x is rows×inp, w is out×inp, y is rows×out, all contiguous and distinct.
            unsafe {
                matmul(
                    rows,
                    out,
                    inp,
                    y.as_mut_ptr(),
                    out,
                    View::rows(x, inp),
                    View::rows(w, inp).t(),
                    false,
                    true,
                );
            }
            y
        };
        let mut y = y;
        let keep_pre = self.train && self.act == Activation::Gelu;
        let mut pre = if keep_pre {
            vec![0f32; y.len()]
        } else {
            Vec::new()
        };
        let (p, seed) = self.dropout;
        let k = rows_per_task(out) * out;
        let gelu = self.act == Activation::Gelu;
        let epilogue = |c: usize, yc: &mut [f32], pc: Option<&mut [f32]>| {
            add_bias(yc, b);
            if let Some(pc) = pc {
                pc.copy_from_slice(yc);
            }
            if gelu {
                gelu_in_place(yc);
            }
            if p > 0.0 {
                drop_in_place(yc, p, seed, (c * k) as u64);
            }
        };
        if keep_pre {
            y.par_chunks_mut(k)
                .zip(pre.par_chunks_mut(k))
                .enumerate()
                .for_each(|(c, (yc, pc))| epilogue(c, yc, Some(pc)));
        } else {
            y.par_chunks_mut(k)
                .enumerate()
                .for_each(|(c, yc)| epilogue(c, yc, None));
        }
        if keep_pre {
            *self.pre.lock().expect("linear stash") = pre;
        }
        let mut dims = l1.dims().to_vec();
        *dims.last_mut().expect("non-scalar") = out;
        Ok((CpuStorage::F32(y), Shape::from(dims)))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (out, inp) = w.dims2()?;
        let rows = x.elem_count() / inp;
        let pre = std::mem::take(&mut *self.pre.lock().expect("linear stash"));
        if self.act == Activation::Gelu && pre.len() != rows * out {
            bail!("linear: backward without a train-mode forward");
        }
        let (p, seed) = self.dropout;
        let k = rows_per_task(out) * out;
        // dz = dact(dropout'(dy)), and db = column sums of dz.
        let mut dz = with_data(dy, |g| Ok(g.to_vec()))?;
        let db = dz
            .par_chunks_mut(k)
            .enumerate()
            .map(|(c, dc)| {
                if p > 0.0 {
                    drop_in_place(dc, p, seed, (c * k) as u64);
                }
                if self.act == Activation::Gelu {
                    gelu_grad_in_place(dc, &pre[c * k..c * k + dc.len()]);
                }
                let mut db = vec![0f32; out];
                for r in dc.chunks_exact(out) {
                    add_into(&mut db, r);
                }
                db
            })
            .reduce(
                || vec![0f32; out],
                |mut a, b| {
                    add_into(&mut a, &b);
                    a
                },
            );
        drop(pre);
        let (dx, dw) = with_data(x, |xs| {
            with_data(w, |ws| {
                let mut dx = vec![0f32; rows * inp];
                let mut dw = vec![0f32; out * inp];
                // SAFETY: shapes as in the forward pass; outputs are fresh buffers.
                unsafe {
                    // dx = dz · W
                    matmul(
                        rows,
                        inp,
                        out,
                        dx.as_mut_ptr(),
                        inp,
                        View::rows(&dz, out),
                        View::rows(ws, inp),
                        false,
                        true,
                    );
                    // dW = dzᵀ · x
                    matmul(
                        out,
                        inp,
                        rows,
                        dw.as_mut_ptr(),
                        inp,
                        View::rows(&dz, out).t(),
                        View::rows(xs, inp),
                        false,
                        true,
                    );
                }
                Ok((dx, dw))
            })
        })?;
        Ok((
            Some(tensor(dx, x.shape())?),
            Some(tensor(dw, w.shape())?),
            Some(tensor(db, b.shape())?),
        ))
    }
}

/// `dropout(act(x Wᵀ + b))` for `x` `(.., in)`, a Hugging Face `(out, in)` weight and bias
/// `(out)`, in one op with its backward; `dropout` is `(p, seed)` (p = 0: none). `train`
/// keeps what backward needs. `packed` is `w` already packed by
/// [`PackedMatrix::from_weight`] (used where the packed products run; otherwise `w` is packed
/// per call there, or multiplied by the `gemm` crate elsewhere); it must hold `w`'s values.
pub fn linear(
    x: &Tensor,
    w: &Tensor,
    packed: Option<&Arc<PackedMatrix>>,
    b: &Tensor,
    act: Activation,
    dropout: (f32, u64),
    train: bool,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &w.contiguous()?,
        &b.contiguous()?,
        LinearOp {
            act,
            dropout,
            train,
            packed: packed.cloned(),
            pre: std::sync::Mutex::new(Vec::new()),
        },
    )
}

multiversion! {
    /// Adds `bias` to every row of `rows` (rows of `bias.len()` elements).
    pub(super) fn add_bias(rows: &mut [f32], bias: &[f32]) {
        for r in rows.chunks_exact_mut(bias.len()) {
            for (o, &b) in r.iter_mut().zip(bias) {
                *o += b;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use candle_core::Var;

    use super::*;
    use crate::kernels::test_support::{close, grads, mask_of, rand};

    #[test]
    fn linear_with_gelu_and_dropout_matches_primitives() {
        let x = Var::from_tensor(&rand(&[2, 7, 12], 4)).unwrap();
        let w = Var::from_tensor(&rand(&[20, 12], 5)).unwrap();
        let b = Var::from_tensor(&rand(&[20], 6)).unwrap();
        for (act, p) in [
            (Activation::Identity, 0.0),
            (Activation::Gelu, 0.0),
            (Activation::Identity, 0.3),
            (Activation::Gelu, 0.3),
        ] {
            let fused = linear(&x, &w, None, &b, act, (p, 77), true).unwrap();
            let z = x
                .broadcast_matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            let mut reference = match act {
                Activation::Identity => z,
                Activation::Gelu => z.gelu_erf().unwrap(),
            };
            if p > 0.0 {
                reference = (reference * mask_of(&[2, 7, 20], p, 77)).unwrap();
            }
            close(&fused, &reference, 1e-5, &format!("{act:?} {p} forward"));
            let gf = grads(&[&x, &w, &b], &fused, 10);
            let gr = grads(&[&x, &w, &b], &reference, 10);
            for (i, (a, b)) in gf.iter().zip(&gr).enumerate() {
                close(a, b, 1e-4, &format!("{act:?} {p} gradient {i}"));
            }
        }
    }
}
