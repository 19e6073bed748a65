//! The Verilated dot-product tile ([`TileDut`]): the same port protocol as rust-hdl's
//! simulation of it (`sop_hw::tile_sim::TilePorts`), so `sop_hw::tile_sim::run_gemv`
//! drives either one cycle for cycle.

use std::ffi::{c_void, CString};
use std::path::Path;
use std::ptr::NonNull;

use sop_hw::tile_sim::{TileCol, TileKind, TilePorts};

use crate::ffi::{TileDesc, Variant, TILES};
use crate::CosimError;

/// A port pointer with its width in bytes (1, 2 or 4).
#[derive(Clone, Copy)]
struct P(*mut c_void, u32);

impl P {
    /// # Safety
    /// The pointer addresses a live port of `self.1` bytes.
    #[inline(always)]
    unsafe fn w(self, v: u32) {
        match self.1 {
            1 => (self.0 as *mut u8).write(v as u8),
            2 => (self.0 as *mut u16).write(v as u16),
            _ => (self.0 as *mut u32).write(v),
        }
    }
    /// # Safety
    /// As [`P::w`].
    #[inline(always)]
    unsafe fn r(self) -> u32 {
        match self.1 {
            1 => (self.0 as *const u8).read() as u32,
            2 => (self.0 as *const u16).read() as u32,
            _ => (self.0 as *const u32).read(),
        }
    }
}

struct RowPorts {
    scale: P,
    sel: P,
    code: P,
    acc: P,
}

struct Ports {
    reset: P,
    load_table: P,
    load_addr: P,
    load_data: P,
    load_we: P,
    load_bias: P,
    load_bias_we: P,
    load_mode: P,
    load_mode_we: P,
    x_valid: P,
    x_word: P,
    x_last: P,
    xm_valid: P,
    xm_emax: P,
    xm_nan: P,
    valid: P,
    block_start: P,
    last: P,
    act: P,
    emax: P,
    nan: P,
    out_valid: P,
    rows: Vec<RowPorts>,
}

/// A running Verilated tile. Cycle convention as [`crate::Dut`]: drive the inputs of cycle
/// `n`, read the outputs visible in cycle `n`, then [`TilePorts::tick`].
pub struct TileDut {
    h: NonNull<c_void>,
    desc: &'static TileDesc,
    kind: TileKind,
    p: Ports,
    cycle: u64,
    vcd: bool,
}

// SAFETY: a TileDut owns its model and the model's own VerilatedContext; all access goes
// through `&mut self`.
unsafe impl Send for TileDut {}

/// The names of the linked tiles (untraced builds), in file order.
pub fn tile_names() -> Vec<&'static str> {
    TILES
        .iter()
        .filter(|t| t.variant == Variant::Plain)
        .map(|t| t.name)
        .collect()
}

impl TileDut {
    /// Instantiates tile `name` (a `rtl-out/sop_tile_*.v` stem), traced or not. Call
    /// `sop_hw::tile_sim::reset` before use.
    pub fn new(name: &str, traced: bool) -> Result<TileDut, CosimError> {
        TileDut::with_variant(name, if traced { Variant::Traced } else { Variant::Plain })
    }

    /// Instantiates a variant of tile `name`: `Plain`, `Traced`, or `Mutant` (the
    /// block-scale multiply broken by [`crate::ffi::TILE_MUTATION`], for the mutation check).
    pub fn with_variant(name: &str, variant: Variant) -> Result<TileDut, CosimError> {
        let desc = TILES
            .iter()
            .find(|t| t.name == name && t.variant == variant)
            .ok_or_else(|| {
                CosimError::Model(format!(
                    "no Verilated tile `{name}` ({variant:?}) (built: {})",
                    tile_names().join(", ")
                ))
            })?;
        let (kind, _) = TileKind::from_name(name)
            .ok_or_else(|| CosimError::Model(format!("`{name}` is not a tile name sop-hw knows")))?;
        // SAFETY: the shim's constructor has no preconditions.
        let h = NonNull::new(unsafe { (desc.fns.new)() })
            .ok_or_else(|| CosimError::Model(format!("{name}: the model could not be created")))?;
        let mut ptrs = vec![std::ptr::null_mut::<c_void>(); desc.ports.len()];
        // SAFETY: room for `desc.ports.len()` pointers.
        let n = unsafe { (desc.fns.ports)(h.as_ptr(), ptrs.as_mut_ptr(), ptrs.len() as u32) };
        let bound = if n as usize == desc.ports.len() {
            bind(desc, &ptrs)
        } else {
            Err(CosimError::Model(format!(
                "{name}: the shim reports {n} ports, the port table {}",
                desc.ports.len()
            )))
        };
        match bound {
            Ok(p) => Ok(TileDut {
                h,
                desc,
                kind,
                p,
                cycle: 0,
                vcd: false,
            }),
            Err(e) => {
                // SAFETY: `h` came from `new` and is freed once.
                unsafe { (desc.fns.free)(h.as_ptr()) };
                Err(e)
            }
        }
    }

    /// The tile's name.
    pub fn name(&self) -> &'static str {
        self.desc.name
    }

    /// Clock cycles since creation.
    pub fn cycle(&self) -> u64 {
        self.cycle
    }

    /// Starts writing a VCD waveform of every following cycle to `path` (traced builds only).
    pub fn open_vcd(&mut self, path: &Path) -> Result<(), CosimError> {
        let c = CString::new(path.to_string_lossy().as_bytes())
            .map_err(|_| CosimError::Model(format!("VCD path {} contains a NUL byte", path.display())))?;
        // SAFETY: valid handle and NUL-terminated path.
        let r = unsafe { (self.desc.fns.vcd_open)(self.h.as_ptr(), c.as_ptr(), self.cycle) };
        if r != 0 {
            return Err(CosimError::Model(format!(
                "{}: cannot write the VCD {} ({})",
                self.desc.name,
                path.display(),
                if self.desc.variant.is_traced() {
                    "the file cannot be opened"
                } else {
                    "this build has no tracing"
                }
            )));
        }
        // SAFETY: valid handle.
        unsafe { (self.desc.fns.vcd_dump)(self.h.as_ptr(), 1) };
        self.vcd = true;
        Ok(())
    }

    /// Flushes and closes the VCD, if one is open.
    pub fn close_vcd(&mut self) {
        if self.vcd {
            // SAFETY: valid handle.
            unsafe { (self.desc.fns.vcd_close)(self.h.as_ptr()) };
            self.vcd = false;
        }
    }
}

impl Drop for TileDut {
    fn drop(&mut self) {
        self.close_vcd();
        // SAFETY: `h` came from `new` and is freed once, here.
        unsafe { (self.desc.fns.free)(self.h.as_ptr()) };
    }
}

fn bind(desc: &TileDesc, ptrs: &[*mut c_void]) -> Result<Ports, CosimError> {
    let get = |name: &str, input: bool| -> Result<P, CosimError> {
        desc.ports
            .iter()
            .zip(ptrs)
            .find(|(d, _)| d.name == name)
            .filter(|(d, p)| d.input == input && !p.is_null() && matches!(d.bytes, 1 | 2 | 4))
            .map(|(d, p)| P(*p, d.bytes))
            .ok_or_else(|| {
                CosimError::Model(format!(
                    "{}: port `{name}` ({}) is missing or has another direction or width",
                    desc.name,
                    if input { "input" } else { "output" }
                ))
            })
    };
    let rows = (0..desc.rows as usize)
        .map(|i| {
            Ok(RowPorts {
                scale: get(&format!("scale_{i}"), true)?,
                sel: get(&format!("sel_{i}"), true)?,
                code: get(&format!("code_{i}"), true)?,
                acc: get(&format!("acc_{i}"), false)?,
            })
        })
        .collect::<Result<Vec<_>, CosimError>>()?;
    Ok(Ports {
        reset: get("reset", true)?,
        load_table: get("load_table", true)?,
        load_addr: get("load_addr", true)?,
        load_data: get("load_data", true)?,
        load_we: get("load_we", true)?,
        load_bias: get("load_bias", true)?,
        load_bias_we: get("load_bias_we", true)?,
        load_mode: get("load_mode", true)?,
        load_mode_we: get("load_mode_we", true)?,
        x_valid: get("x_valid", true)?,
        x_word: get("x_word", true)?,
        x_last: get("x_last", true)?,
        xm_valid: get("xm_valid", false)?,
        xm_emax: get("xm_emax", false)?,
        xm_nan: get("xm_nan", false)?,
        valid: get("valid", true)?,
        block_start: get("block_start", true)?,
        last: get("last", true)?,
        act: get("act", true)?,
        emax: get("emax", true)?,
        nan: get("nan", true)?,
        out_valid: get("out_valid", false)?,
        rows,
    })
}

// SAFETY (every unsafe block below): the pointers were bound by `bind` to this model's ports
// with their byte widths, and live as long as `self`.
impl TilePorts for TileDut {
    fn kind(&self) -> TileKind {
        self.kind
    }
    fn rows(&self) -> usize {
        self.p.rows.len()
    }
    fn set_reset(&mut self, r: bool) {
        unsafe { self.p.reset.w(r as u32) }
    }
    fn set_load(&mut self, table: bool, addr: u32, data: u32, we: bool, bias: u8, bias_we: bool) {
        unsafe {
            self.p.load_table.w(table as u32);
            self.p.load_addr.w(addr);
            self.p.load_data.w(data);
            self.p.load_we.w(we as u32);
            self.p.load_bias.w(bias as u32);
            self.p.load_bias_we.w(bias_we as u32);
        }
    }
    fn set_mode(&mut self, mode: u8, we: bool) {
        unsafe {
            self.p.load_mode.w(mode as u32);
            self.p.load_mode_we.w(we as u32);
        }
    }
    fn set_x(&mut self, valid: bool, word: u16, last: bool) {
        unsafe {
            self.p.x_valid.w(valid as u32);
            self.p.x_word.w(word as u32);
            self.p.x_last.w(last as u32);
        }
    }
    fn xm(&mut self) -> (bool, u8, bool) {
        unsafe {
            (
                self.p.xm_valid.r() != 0,
                self.p.xm_emax.r() as u8,
                self.p.xm_nan.r() != 0,
            )
        }
    }
    #[inline]
    fn set_col(&mut self, col: &TileCol) {
        unsafe {
            self.p.valid.w(col.valid as u32);
            self.p.block_start.w(col.block_start as u32);
            self.p.last.w(col.last as u32);
            self.p.act.w(col.act as u32);
            self.p.emax.w(col.emax as u32);
            self.p.nan.w(col.nan as u32);
            for (r, &(c, s, l)) in self.p.rows.iter().zip(&col.rows) {
                r.code.w(c);
                r.scale.w(s as u32);
                r.sel.w(l as u32);
            }
        }
    }
    fn out_valid(&mut self) -> bool {
        unsafe { self.p.out_valid.r() != 0 }
    }
    fn acc(&mut self, i: usize) -> u32 {
        unsafe { self.p.rows[i].acc.r() }
    }
    #[inline]
    fn tick(&mut self) {
        // SAFETY: valid handle.
        unsafe { (self.desc.fns.tick)(self.h.as_ptr()) };
        self.cycle += 1;
    }
}
