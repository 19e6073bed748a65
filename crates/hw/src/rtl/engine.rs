//! The decode engine's additions to a HIF lane (`LaneConfig::engine`): the stage-1 front
//! (code-width mask, direct minifloat decoders, runtime scale-format select) and the stage-2
//! multiplier that takes either a HIF table word or a directly decoded minifloat into one
//! shift-add datapath. See `docs/hardware.md`, "Decode engine", and [`crate::mode`].
//!
//! Every element, HIF or minifloat, is brought to the form `(8 + m) / 8 * 2^(E - 127)` with
//! a 3-bit `m` (HIF mantissas are eighths in `[1, 2)`; a minifloat significand has at most
//! three fraction bits, a subnormal one is normalized by its leading bit), so the product
//! with a normalized scale significand `s` is `(s << 3) + m * s`: at most four terms, the
//! leading one at bit 7 or 8 as in a HIF lane, and the lane's normalized packer follows.

use rust_hdl::prelude::*;
use sop_formats::hif::MANT_EIGHTHS;
use sop_formats::point::{LutEntry, ScaleFormat};
use sop_formats::MiniFloat;

use super::cb;
use super::mul::ScaleDec;
use crate::config::LaneConfig;
use crate::mode::{ElementPath, CODE6_BIT, E4M3_BIT, SIGNED_BIT};
use crate::params::{direct_exponent, engine_scale_rebase, Params, HIF_MANT_SHIFT, XW as XW_U32};

const XW: usize = XW_U32 as usize;

/// Direct decoder of one minifloat code (E2M1, E2M3 or E3M2; combinational): sign, the
/// 3-bit fraction `m` of the normalized significand `1.m` in eighths, the HIF-domain
/// exponent `E` ([`direct_exponent`]) and a zero flag. Bits above the format's width are
/// ignored.
#[derive(LogicBlock)]
pub struct MfDec {
    /// Code (low `bits` bits used).
    pub code: Signal<In, Bits<8>>,
    /// Negative.
    pub neg: Signal<Out, bool>,
    /// Fraction in eighths (`0 ..= 7`).
    pub m: Signal<Out, Bits<8>>,
    /// HIF-domain exponent.
    pub e: Signal<Out, Bits<8>>,
    /// The code is +0 or -0.
    pub zero: Signal<Out, bool>,
    ef: Signal<Local, Bits<8>>,
    mf: Signal<Local, Bits<8>>,
    sign_mask: Constant<Bits<8>>,
    man_shift: Constant<Bits<8>>,
    exp_mask: Constant<Bits<8>>,
    man_mask: Constant<Bits<8>>,
    align: Constant<Bits<8>>,
    e_off: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    /// Per mantissa bit `j` (the leading one of a subnormal): the shift `man_bits - j`
    /// that makes it the hidden bit.
    k_sh: Vec<Constant<Bits<8>>>,
    /// Per mantissa bit `j`: the subnormal's exponent.
    k_e: Vec<Constant<Bits<8>>>,
}

impl MfDec {
    /// The decoder of `mf` (at most three mantissa bits, no special values).
    pub fn new(mf: &MiniFloat) -> Self {
        let mb = mf.man_bits;
        assert!(
            mb <= HIF_MANT_SHIFT,
            "{} has more fraction bits than the datapath",
            mf.name
        );
        Self {
            code: Default::default(),
            neg: Default::default(),
            m: Default::default(),
            e: Default::default(),
            zero: Default::default(),
            ef: Default::default(),
            mf: Default::default(),
            sign_mask: cb(1u64 << (mf.exp_bits + mb)),
            man_shift: cb(mb as u64),
            exp_mask: cb((1u64 << mf.exp_bits) - 1),
            man_mask: cb((1u64 << mb) - 1),
            align: cb((HIF_MANT_SHIFT - mb) as u64),
            e_off: cb(direct_exponent(mf, 0, None) as u64),
            zero8: cb(0),
            k_sh: (0..mb).map(|j| cb((mb - j) as u64)).collect(),
            k_e: (0..mb).map(|j| cb(direct_exponent(mf, 0, Some(j)) as u64)).collect(),
        }
    }
}

impl Logic for MfDec {
    #[hdl_gen]
    fn update(&mut self) {
        self.neg.next = (self.code.val() & self.sign_mask.val()) != self.zero8.val();
        self.ef.next = (self.code.val() >> self.man_shift.val()) & self.exp_mask.val();
        self.mf.next = self.code.val() & self.man_mask.val();
        self.zero.next = (self.ef.val() == self.zero8.val()) && (self.mf.val() == self.zero8.val());
        if self.ef.val() == self.zero8.val() {
            // Subnormal: the highest set mantissa bit becomes the hidden bit.
            self.m.next = self.zero8.val();
            self.e.next = self.zero8.val();
            for j in 0..self.k_sh.len() {
                if self.mf.val().get_bit(j) {
                    self.m.next = ((self.mf.val() << self.k_sh[j].val()) & self.man_mask.val()) << self.align.val();
                    self.e.next = self.k_e[j].val();
                }
            }
        } else {
            self.m.next = self.mf.val() << self.align.val();
            self.e.next = self.ef.val() + self.e_off.val();
        }
    }
}

/// Stage 1 of an engine lane (combinational): masks the code to the mode's width, decodes
/// it with the mode's direct decoder, and selects the block scale's decode by the mode's
/// scale format (the lane's own decoder is UE4M4; an E4M3 decoder beside it, rebased into
/// the UE4M4 exponent domain).
#[derive(LogicBlock)]
pub struct EngineFront<const C: usize> {
    /// Weight code.
    pub code: Signal<In, Bits<C>>,
    /// Mode register.
    pub mode: Signal<In, Bits<8>>,
    /// Block-scale code of this cycle.
    pub scale: Signal<In, Bits<8>>,
    /// UE4M4 decode of `scale` (the lane's `ScaleDec`): significand.
    pub usig: Signal<In, Bits<8>>,
    /// UE4M4 decode: exponent.
    pub uexp: Signal<In, Bits<8>>,
    /// UE4M4 decode: zero (normalized decoders, HIF engines; `false` on an FP16-LUT engine).
    pub uzero: Signal<In, bool>,
    /// The code masked to the mode's width (the table address).
    pub code_m: Signal<Out, Bits<C>>,
    /// Selected scale significand.
    pub sig: Signal<Out, Bits<8>>,
    /// Selected scale exponent (UE4M4 domain).
    pub exp: Signal<Out, Bits<8>>,
    /// Scale sign (SE4M3 mode only).
    pub neg: Signal<Out, bool>,
    /// Scale is zero (HIF engines; an FP16-LUT engine's multiplier needs no flag, a zero
    /// scale has a zero significand there, and leaves it unconnected).
    pub szero: Signal<Out, bool>,
    /// Direct decode: sign.
    pub dneg: Signal<Out, bool>,
    /// Direct decode: fraction in eighths.
    pub dm: Signal<Out, Bits<8>>,
    /// Direct decode: HIF-domain exponent.
    pub de: Signal<Out, Bits<8>>,
    /// Direct decode: zero code.
    pub dzero: Signal<Out, bool>,
    /// The mode's element path is the LUT.
    pub is_lut: Signal<Out, bool>,
    sde: ScaleDec,
    dec: Vec<MfDec>,
    code8: Signal<Local, Bits<8>>,
    elem: Signal<Local, Bits<8>>,
    c6_bit: Constant<Bits<8>>,
    fam_bit: Constant<Bits<8>>,
    signed_bit: Constant<Bits<8>>,
    elem_mask: Constant<Bits<8>>,
    mask4: Constant<Bits<8>>,
    mask6: Constant<Bits<8>>,
    rebase: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    /// Per direct decoder: its element-path field value.
    k_path: Vec<Constant<Bits<8>>>,
}

impl<const C: usize> EngineFront<C> {
    /// The front of an engine configuration.
    pub fn new(cfg: &LaneConfig) -> Self {
        // The E4M3 decoder is the SE4M3 one: its sign output is used only in SE4M3 mode,
        // its magnitude fields are E4M3's either way. Normalized exactly when the lane's
        // own (UE4M4) decoder is: HIF tables.
        let normalized = cfg.lut.hif().is_some();
        let e4m3 = Params::new(&LaneConfig {
            scale: ScaleFormat::SE4M3,
            engine: false,
            lut: if normalized { LutEntry::Hif8 } else { LutEntry::Fp16 },
            ..cfg.clone()
        });
        let direct: Vec<ElementPath> = ElementPath::ALL
            .into_iter()
            .filter(|e| e.minifloat().is_some())
            .collect();
        Self {
            code: Default::default(),
            mode: Default::default(),
            scale: Default::default(),
            usig: Default::default(),
            uexp: Default::default(),
            uzero: Default::default(),
            code_m: Default::default(),
            sig: Default::default(),
            exp: Default::default(),
            neg: Default::default(),
            szero: Default::default(),
            dneg: Default::default(),
            dm: Default::default(),
            de: Default::default(),
            dzero: Default::default(),
            is_lut: Default::default(),
            sde: ScaleDec::new(&e4m3),
            dec: direct.iter().map(|e| MfDec::new(&e.minifloat().unwrap())).collect(),
            code8: Default::default(),
            elem: Default::default(),
            c6_bit: cb(1u64 << CODE6_BIT),
            fam_bit: cb(1u64 << E4M3_BIT),
            signed_bit: cb(1u64 << SIGNED_BIT),
            elem_mask: cb(3),
            mask4: cb(0x0f),
            mask6: cb(0x3f),
            rebase: cb(engine_scale_rebase(ScaleFormat::E4M3, normalized) as u64),
            zero8: cb(0),
            k_path: direct.iter().map(|e| cb(e.field() as u64)).collect(),
        }
    }
}

impl<const C: usize> Logic for EngineFront<C> {
    #[hdl_gen]
    fn update(&mut self) {
        self.code8.next = bit_cast::<8, C>(self.code.val()) & self.mask4.val();
        if (self.mode.val() & self.c6_bit.val()) != self.zero8.val() {
            self.code8.next = bit_cast::<8, C>(self.code.val()) & self.mask6.val();
        }
        self.code_m.next = self.code8.val().get_bits::<C>(0);
        self.sde.code.next = self.scale.val();
        self.sig.next = self.usig.val();
        self.exp.next = self.uexp.val();
        self.neg.next = false;
        self.szero.next = self.uzero.val();
        if (self.mode.val() & self.fam_bit.val()) != self.zero8.val() {
            self.sig.next = self.sde.sig.val();
            self.exp.next = self.sde.exp.val() + self.rebase.val();
            // A general (FP16-LUT) decoder has no zero flag: its significand is 0 then.
            for i in 0..self.sde.zero.len() {
                self.szero.next = self.sde.zero[i].val();
            }
            if (self.mode.val() & self.signed_bit.val()) != self.zero8.val() {
                self.neg.next = self.sde.neg.val();
            }
        }
        self.elem.next = self.mode.val() & self.elem_mask.val();
        self.is_lut.next = self.elem.val() == self.zero8.val();
        self.dneg.next = false;
        self.dm.next = self.zero8.val();
        self.de.next = self.zero8.val();
        self.dzero.next = true;
        for i in 0..self.dec.len() {
            self.dec[i].code.next = self.code8.val();
            if self.elem.val() == self.k_path[i].val() {
                self.dneg.next = self.dec[i].neg.val();
                self.dm.next = self.dec[i].m.val();
                self.de.next = self.dec[i].e.val();
                self.dzero.next = self.dec[i].zero.val();
            }
        }
    }
}

/// Stage 2 of an engine lane (combinational): the element (HIF table word or direct
/// decode) times the normalized block-scale significand, `p = (s << 3) + m * s`, and the
/// offset exponent `x = E + es + xpad`, in the form a HIF lane's packer takes.
#[derive(LogicBlock)]
pub struct EngineMul<const W: usize, const PW: usize> {
    /// LUT word (HIF7 or HIF8), used on the LUT path.
    pub entry: Signal<In, Bits<W>>,
    /// Normalized scale significand.
    pub ssig: Signal<In, Bits<8>>,
    /// Scale exponent (UE4M4 domain).
    pub sexp: Signal<In, Bits<8>>,
    /// Scale sign.
    pub sneg: Signal<In, bool>,
    /// Scale is zero.
    pub szero: Signal<In, bool>,
    /// Bias register of the entry's table.
    pub bias: Signal<In, Bits<8>>,
    /// Direct decode: sign.
    pub dneg: Signal<In, bool>,
    /// Direct decode: fraction in eighths.
    pub dm: Signal<In, Bits<8>>,
    /// Direct decode: HIF-domain exponent.
    pub de: Signal<In, Bits<8>>,
    /// Direct decode: zero code.
    pub dzero: Signal<In, bool>,
    /// Take the table word (else the direct decode).
    pub is_lut: Signal<In, bool>,
    /// Product sign.
    pub neg: Signal<Out, bool>,
    /// Product magnitude (meaningless when `zero`).
    pub p: Signal<Out, Bits<PW>>,
    /// Offset exponent: value = `p * 2^(x - xoff)`.
    pub x: Signal<Out, Bits<XW>>,
    /// The product is zero.
    pub zero: Signal<Out, bool>,
    w8: Signal<Local, Bits<8>>,
    c: Signal<Local, Bits<8>>,
    cl: Signal<Local, Bits<8>>,
    he: Signal<Local, Bits<8>>,
    hneg: Signal<Local, bool>,
    lm: Signal<Local, Bits<8>>,
    nb: Signal<Local, Bits<8>>,
    en: Signal<Local, bool>,
    em: Signal<Local, Bits<8>>,
    ex: Signal<Local, Bits<XW>>,
    ez: Signal<Local, bool>,
    sp: Signal<Local, Bits<PW>>,
    t1: Signal<Local, Bits<PW>>,
    t2: Signal<Local, Bits<PW>>,
    t3: Signal<Local, Bits<PW>>,
    sign_mask: Constant<Bits<8>>,
    c_shift: Constant<Bits<8>>,
    e_mask: Constant<Bits<8>>,
    c_mask: Constant<Bits<8>>,
    cl_mask: Constant<Bits<8>>,
    n_mant: Constant<Bits<8>>,
    top: Constant<Bits<PW>>,
    bias_flip: Constant<Bits<8>>,
    zero8: Constant<Bits<8>>,
    zero_p: Constant<Bits<PW>>,
    xpad: Constant<Bits<XW>>,
    sh1: Constant<Bits<8>>,
    sh2: Constant<Bits<8>>,
    sh3: Constant<Bits<8>>,
    b0: Constant<Bits<3>>,
    b1: Constant<Bits<3>>,
    b2: Constant<Bits<3>>,
    /// Per used mantissa code `c`: the code.
    k_c: Vec<Constant<Bits<8>>>,
    /// Per used mantissa code: its fraction in eighths (`MANT_EIGHTHS[c] - 8`).
    k_m: Vec<Constant<Bits<8>>>,
}

impl<const W: usize, const PW: usize> EngineMul<W, PW> {
    /// The multiplier of an engine configuration.
    pub fn new(p: &Params) -> Self {
        let h = p.hif().expect("an engine has HIF tables");
        assert!(p.engine && p.normalized);
        assert_eq!((h.bits() as usize, p.pw as usize), (W, PW));
        let max = (1u32 << (HIF_MANT_SHIFT + 1)) - 1;
        assert!(
            max * ((1u32 << (crate::params::SCALE_MAN_ALIGNED + 1)) - 1) < (1 << PW),
            "products fit PW bits"
        );
        let cbits = h.c_bits();
        let cl_bits = 32 - (h.mantissas() - 1).leading_zeros();
        let eighths = 1u32 << HIF_MANT_SHIFT;
        Self {
            entry: Default::default(),
            ssig: Default::default(),
            sexp: Default::default(),
            sneg: Default::default(),
            szero: Default::default(),
            bias: Default::default(),
            dneg: Default::default(),
            dm: Default::default(),
            de: Default::default(),
            dzero: Default::default(),
            is_lut: Default::default(),
            neg: Default::default(),
            p: Default::default(),
            x: Default::default(),
            zero: Default::default(),
            w8: Default::default(),
            c: Default::default(),
            cl: Default::default(),
            he: Default::default(),
            hneg: Default::default(),
            lm: Default::default(),
            nb: Default::default(),
            en: Default::default(),
            em: Default::default(),
            ex: Default::default(),
            ez: Default::default(),
            sp: Default::default(),
            t1: Default::default(),
            t2: Default::default(),
            t3: Default::default(),
            sign_mask: cb(h.word(true, 0, 0) as u64),
            c_shift: cb(cbits as u64),
            e_mask: cb((sop_formats::hif::OCTAVES - 1) as u64),
            c_mask: cb((1u64 << cbits) - 1),
            cl_mask: cb((1u64 << cl_bits) - 1),
            n_mant: cb(h.mantissas() as u64),
            top: cb(1u64 << crate::params::SCALE_MAN_ALIGNED),
            bias_flip: cb((1u64 << (crate::params::SCALE_BITS - 1)) - 1),
            zero8: cb(0),
            zero_p: cb(0),
            xpad: cb(p.xpad as u64),
            sh1: cb(1),
            sh2: cb(2),
            sh3: cb(HIF_MANT_SHIFT as u64),
            b0: cb(0),
            b1: cb(1),
            b2: cb(2),
            k_c: (0..h.mantissas()).map(|c| cb(c as u64)).collect(),
            k_m: (0..h.mantissas())
                .map(|c| cb((MANT_EIGHTHS[c as usize] - eighths) as u64))
                .collect(),
        }
    }
}

impl<const W: usize, const PW: usize> Logic for EngineMul<W, PW> {
    #[hdl_gen]
    fn update(&mut self) {
        // The HIF word, as HifMul reads it.
        self.w8.next = bit_cast::<8, W>(self.entry.val());
        self.hneg.next = (self.w8.val() & self.sign_mask.val()) != self.zero8.val();
        self.c.next = self.w8.val() & self.c_mask.val();
        self.cl.next = self.c.val() & self.cl_mask.val();
        self.he.next = (self.w8.val() >> self.c_shift.val()) & self.e_mask.val();
        self.lm.next = self.k_m[0].val();
        for i in 0..self.k_c.len() {
            if self.cl.val() == self.k_c[i].val() {
                self.lm.next = self.k_m[i].val();
            }
        }
        self.nb.next = self.bias.val() ^ self.bias_flip.val();
        // Element select: the table word or the direct decode.
        self.en.next = self.dneg.val();
        self.em.next = self.dm.val();
        self.ex.next = bit_cast::<XW, 8>(self.de.val());
        self.ez.next = self.dzero.val();
        if self.is_lut.val() {
            self.en.next = self.hneg.val();
            self.em.next = self.lm.val();
            self.ex.next = bit_cast::<XW, 8>(self.he.val()) + bit_cast::<XW, 8>(self.nb.val());
            self.ez.next = self.c.val() >= self.n_mant.val();
        }
        // (8 + m) * s: the scale significand's top bit is always 1 (a constant for synthesis).
        self.sp.next = bit_cast::<PW, 8>(self.ssig.val()) | self.top.val();
        self.t1.next = self.zero_p.val();
        self.t2.next = self.zero_p.val();
        self.t3.next = self.zero_p.val();
        if self.em.val().get_bit(self.b0.val().index()) {
            self.t1.next = self.sp.val();
        }
        if self.em.val().get_bit(self.b1.val().index()) {
            self.t2.next = self.sp.val() << self.sh1.val();
        }
        if self.em.val().get_bit(self.b2.val().index()) {
            self.t3.next = self.sp.val() << self.sh2.val();
        }
        self.p.next = (self.sp.val() << self.sh3.val()) + self.t1.val() + self.t2.val() + self.t3.val();
        self.x.next = self.ex.val() + bit_cast::<XW, 8>(self.sexp.val()) + self.xpad.val();
        self.zero.next = self.ez.val() || self.szero.val();
        self.neg.next = self.en.val() ^ self.sneg.val();
    }
}

/// Stage 2 of an FP16-LUT engine's direct path (combinational): the directly decoded
/// minifloat `(8 + m) / 8 * 2^(E - 127)` as the FP16 word the lane's FP16 multiplier takes
/// in place of a table word (`sign | E - 112 | m << 7`; every E2M1, E2M3 and E3M2 value is
/// an FP16 normal), or `+0` for a zero code.
#[derive(LogicBlock)]
pub struct DirectFp16<const W: usize> {
    /// Direct decode: sign.
    pub dneg: Signal<In, bool>,
    /// Direct decode: fraction in eighths.
    pub dm: Signal<In, Bits<8>>,
    /// Direct decode: HIF-domain exponent.
    pub de: Signal<In, Bits<8>>,
    /// Direct decode: zero code.
    pub dzero: Signal<In, bool>,
    /// The FP16 word (`W` = 16, the table word width).
    pub word: Signal<Out, Bits<W>>,
    rebias: Constant<Bits<W>>,
    sign: Constant<Bits<W>>,
    e_shift: Constant<Bits<W>>,
    m_shift: Constant<Bits<W>>,
    zero16: Constant<Bits<W>>,
}

impl<const W: usize> DirectFp16<W> {
    /// The converter into FP16 words.
    pub fn new() -> Self {
        let f = sop_formats::Ieee16::Fp16;
        assert_eq!(W, 16, "FP16 table words");
        let hif_off = (1u64 << (sop_formats::point::LUT_BIAS_BITS - 1)) - 1;
        // Checked here rather than trusted: every direct format's range is FP16-normal.
        for e in ElementPath::ALL {
            if let Some(mf) = e.minifloat() {
                let lo = direct_exponent(&mf, 0, Some(0)) as i64 - hif_off as i64;
                let hi = direct_exponent(&mf, (1 << mf.exp_bits) - 1, None) as i64 - hif_off as i64;
                assert!(
                    lo >= 1 - f.bias() as i64 && hi <= f.bias() as i64,
                    "{} is not FP16-normal",
                    mf.name
                );
            }
        }
        Self {
            dneg: Default::default(),
            dm: Default::default(),
            de: Default::default(),
            dzero: Default::default(),
            word: Default::default(),
            rebias: cb(hif_off - f.bias() as u64),
            sign: cb(1 << 15),
            e_shift: cb(f.man_bits() as u64),
            m_shift: cb((f.man_bits() - HIF_MANT_SHIFT) as u64),
            zero16: cb(0),
        }
    }
}

impl<const W: usize> Default for DirectFp16<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const W: usize> Logic for DirectFp16<W> {
    #[hdl_gen]
    fn update(&mut self) {
        self.word.next = ((bit_cast::<W, 8>(self.de.val()) - self.rebias.val()) << self.e_shift.val())
            | (bit_cast::<W, 8>(self.dm.val()) << self.m_shift.val());
        if self.dneg.val() {
            self.word.next = self.word.val() | self.sign.val();
        }
        if self.dzero.val() {
            self.word.next = self.zero16.val();
        }
    }
}
