//! Small, safe wrappers over the registry calls the drain and the profile check need: open,
//! create (volatile or not) and delete a key; read, write and delete a value. Every
//! wrapper returns `io::Result` with the Win32 error code, and every open key is closed by
//! [`Key`]'s `Drop` (`RegCloseKey`).
//!
//! What the keys and values mean is decided in `super::convert`, and acted on in
//! `super::drain` and `super::backend`.

use std::io;
use std::ptr;

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, ERROR_SUCCESS, WIN32_ERROR};

use super::wts::{from_wide_buf, wide};
use windows_sys::Win32::System::Registry::{
    HKEY, HKEY_LOCAL_MACHINE, HKEY_USERS, KEY_READ, KEY_WOW64_64KEY, KEY_WRITE, REG_DWORD, REG_OPTION_NON_VOLATILE,
    REG_OPTION_VOLATILE, REG_SZ, REG_VALUE_TYPE, RRF_RT_ANY, RegCloseKey, RegCreateKeyExW, RegDeleteKeyW,
    RegDeleteValueW, RegGetValueW, RegOpenKeyExW, RegSetValueExW,
};

/// A predefined root key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `HKEY_LOCAL_MACHINE`.
    LocalMachine,
    /// `HKEY_USERS`: one key per loaded user hive, named by SID.
    Users,
}

impl Root {
    fn hkey(self) -> HKEY {
        match self {
            Root::LocalMachine => HKEY_LOCAL_MACHINE,
            Root::Users => HKEY_USERS,
        }
    }
}

/// A value as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `REG_DWORD`.
    Dword(u32),
    /// `REG_SZ` (or `REG_EXPAND_SZ`, unexpanded).
    Text(String),
    /// Any other type, by its number.
    Other(u32),
}

/// `ERROR_SUCCESS`, or the error.
fn check(code: WIN32_ERROR) -> io::Result<()> {
    if code == ERROR_SUCCESS { Ok(()) } else { Err(io::Error::from_raw_os_error(code as i32)) }
}

fn is_not_found(e: &io::Error) -> bool {
    e.raw_os_error() == Some(ERROR_FILE_NOT_FOUND as i32)
}

/// An open registry key, closed when dropped.
#[derive(Debug)]
pub struct Key(HKEY);

impl Drop for Key {
    fn drop(&mut self) {
        // SAFETY: the handle came from RegOpenKeyExW or RegCreateKeyExW and is closed
        // exactly once, here.
        unsafe { RegCloseKey(self.0) };
    }
}

impl Key {
    /// Opens `root\path`, for reading, and for writing with `write`; `None` when it does not
    /// exist. The 64-bit view, whatever this process's bitness.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegOpenKeyExW` (access denied, for one).
    pub fn open(root: Root, path: &str, write: bool) -> io::Result<Option<Key>> {
        let access = KEY_READ | KEY_WOW64_64KEY | if write { KEY_WRITE } else { 0 };
        let mut hkey: HKEY = ptr::null_mut();
        let path = wide(path);
        // SAFETY: the root is a predefined key, the path a NUL-terminated UTF-16 string, and
        // hkey a valid out-pointer.
        match check(unsafe { RegOpenKeyExW(root.hkey(), path.as_ptr(), 0, access, &mut hkey) }) {
            Ok(()) => Ok(Some(Key(hkey))),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Opens `root\path` for reading and writing, creating it (and the keys above it) when
    /// it does not exist. A `volatile` key lives in memory only: it is gone at the next
    /// restart (and so must be every key under it).
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegCreateKeyExW`.
    pub fn create(root: Root, path: &str, volatile: bool) -> io::Result<Key> {
        let options = if volatile { REG_OPTION_VOLATILE } else { REG_OPTION_NON_VOLATILE };
        let mut hkey: HKEY = ptr::null_mut();
        let path = wide(path);
        // SAFETY: the root is a predefined key, the path a NUL-terminated UTF-16 string; no
        // class or security attributes; hkey a valid out-pointer; the disposition is not
        // asked for.
        check(unsafe {
            RegCreateKeyExW(
                root.hkey(),
                path.as_ptr(),
                0,
                ptr::null(),
                options,
                KEY_READ | KEY_WRITE | KEY_WOW64_64KEY,
                ptr::null(),
                &mut hkey,
                ptr::null_mut(),
            )
        })?;
        Ok(Key(hkey))
    }

    /// Whether `root\path` exists (a user's hive under `HKEY_USERS`, a key of FSLogix).
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegOpenKeyExW` other than "not found".
    pub fn exists(root: Root, path: &str) -> io::Result<bool> {
        Ok(Key::open(root, path, false)?.is_some())
    }

    /// Deletes the key `root\path`, which must have no subkeys; `false` when it did not
    /// exist.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegDeleteKeyW`.
    pub fn delete(root: Root, path: &str) -> io::Result<bool> {
        let path = wide(path);
        // SAFETY: the root is a predefined key and the path a NUL-terminated UTF-16 string.
        match check(unsafe { RegDeleteKeyW(root.hkey(), path.as_ptr()) }) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The value `name`; `None` when there is none.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegGetValueW`.
    pub fn value(&self, name: &str) -> io::Result<Option<Value>> {
        let name = wide(name);
        let mut kind: REG_VALUE_TYPE = 0;
        let mut size = 0u32;
        // SAFETY: a sizing call: the key is open, the name NUL-terminated, no buffer; kind
        // and size are valid out-pointers.
        match check(unsafe {
            RegGetValueW(self.0, ptr::null(), name.as_ptr(), RRF_RT_ANY, &mut kind, ptr::null_mut(), &mut size)
        }) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
        // u16 words (a string's unit), two more than asked: RegGetValueW NUL-terminates.
        let mut buf = vec![0u16; (size as usize).div_ceil(2) + 2];
        let mut len = (buf.len() * 2) as u32;
        // SAFETY: buf holds len bytes; the other arguments as above.
        check(unsafe {
            RegGetValueW(self.0, ptr::null(), name.as_ptr(), RRF_RT_ANY, &mut kind, buf.as_mut_ptr().cast(), &mut len)
        })?;
        let bytes = len as usize;
        Ok(Some(match kind {
            REG_DWORD if bytes >= 4 => Value::Dword(u32::from(buf[0]) | (u32::from(buf[1]) << 16)),
            REG_SZ | windows_sys::Win32::System::Registry::REG_EXPAND_SZ => {
                Value::Text(from_wide_buf(&buf[..(bytes / 2).min(buf.len())]))
            }
            other => Value::Other(other),
        }))
    }

    /// Writes `name` as a `REG_DWORD`.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegSetValueExW`.
    pub fn set_dword(&self, name: &str, value: u32) -> io::Result<()> {
        let name = wide(name);
        let data = value.to_le_bytes();
        // SAFETY: the key is open for writing; the name is NUL-terminated; data holds 4 bytes.
        check(unsafe { RegSetValueExW(self.0, name.as_ptr(), 0, REG_DWORD, data.as_ptr(), 4) })
    }

    /// Writes `name` as a `REG_SZ`.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegSetValueExW`.
    pub fn set_text(&self, name: &str, value: &str) -> io::Result<()> {
        let name = wide(name);
        let data = wide(value);
        // SAFETY: the key is open for writing; the name is NUL-terminated; data is the
        // NUL-terminated UTF-16 text, its size in bytes including the NUL.
        check(unsafe {
            RegSetValueExW(self.0, name.as_ptr(), 0, REG_SZ, data.as_ptr().cast(), (data.len() * 2) as u32)
        })
    }

    /// Deletes the value `name`; `false` when there was none.
    ///
    /// # Errors
    ///
    /// The Win32 error of `RegDeleteValueW`.
    pub fn delete_value(&self, name: &str) -> io::Result<bool> {
        let name = wide(name);
        // SAFETY: the key is open for writing; the name is NUL-terminated.
        match check(unsafe { RegDeleteValueW(self.0, name.as_ptr()) }) {
            Ok(()) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEST_KEY: &str = r"SOFTWARE\logoff-users-test\registry";

    /// Runs under Wine in CI (`ci/windows.sh`), against the throwaway prefix's registry.
    #[test]
    fn values_round_trip_and_volatile_keys_open() {
        let key = Key::create(Root::LocalMachine, TEST_KEY, true).unwrap();
        key.set_dword("Mode", 7).unwrap();
        key.set_text("Record", "{\"by\": \"VM\\\\root\", \"ü\": 1}").unwrap();
        let again = Key::open(Root::LocalMachine, TEST_KEY, false).unwrap().unwrap();
        assert_eq!(again.value("Mode").unwrap(), Some(Value::Dword(7)));
        assert_eq!(again.value("Record").unwrap(), Some(Value::Text("{\"by\": \"VM\\\\root\", \"ü\": 1}".into())));
        assert_eq!(again.value("Missing").unwrap(), None);
        assert!(key.delete_value("Mode").unwrap());
        assert!(!key.delete_value("Mode").unwrap());
        drop((key, again));
        assert!(Key::delete(Root::LocalMachine, TEST_KEY).unwrap());
        assert!(!Key::exists(Root::LocalMachine, TEST_KEY).unwrap());
        assert!(!Key::delete(Root::LocalMachine, TEST_KEY).unwrap());
    }
}
