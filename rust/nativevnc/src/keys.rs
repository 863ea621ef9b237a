#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scancode {
    pub code: u8,
    pub extended: bool,
}

impl Scancode {
    pub fn qnum(self) -> u32 {
        u32::from(self.code) | if self.extended { 0x80 } else { 0 }
    }
}

pub fn scancode(_: u32) -> Option<Scancode> {
    None
}
