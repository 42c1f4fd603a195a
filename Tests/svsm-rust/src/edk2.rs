//! Requests as edk2 lays them out: VariableSmmRuntimeDxe builds the SMM variable message
//! (SMM_VARIABLE_COMMUNICATE_HEADER and the function's payload) behind an
//! EFI_MM_COMMUNICATE_HEADER, and VirtMmCommunicationDxe copies it to its page-aligned
//! 64 KiB buffer and passes RCX = that buffer, RDX = MAX_BUFFER_SIZE (64 KiB).

/// MAX_BUFFER_SIZE of VirtMmCommunicationDxe: RDX of every protocol 4 call.
pub const MAX_BUFFER_SIZE: usize = 64 * 1024;
/// EFI_MM_COMMUNICATE_HEADER: HeaderGuid (16) + MessageLength (8).
pub const MM_HEADER: usize = 24;
/// SMM_VARIABLE_COMMUNICATE_HEADER: Function (8) + ReturnStatus (8).
pub const VARIABLE_HEADER: usize = 16;
/// OFFSET_OF (SMM_VARIABLE_COMMUNICATE_ACCESS_VARIABLE, Name): Guid, DataSize, NameSize, Attributes.
pub const ACCESS_NAME: usize = 36;
/// OFFSET_OF (SMM_VARIABLE_COMMUNICATE_GET_NEXT_VARIABLE_NAME, Name): Guid, NameSize.
pub const NEXT_NAME: usize = 24;

pub const GET_VARIABLE: u64 = 1;
pub const GET_NEXT_VARIABLE_NAME: u64 = 2;
pub const SET_VARIABLE: u64 = 3;
pub const QUERY_VARIABLE_INFO: u64 = 4;
pub const GET_PAYLOAD_SIZE: u64 = 11;

/// gEfiSmmVariableProtocolGuid ed32d533-99e6-4209-9cc0-2d72cdd998a7
pub const SMM_VARIABLE: [u8; 16] = [0x33, 0xd5, 0x32, 0xed, 0xe6, 0x99, 0x09, 0x42, 0x9c, 0xc0, 0x2d, 0x72, 0xcd, 0xd9, 0x98, 0xa7];
/// EFI_IMAGE_SECURITY_DATABASE_GUID d719b2cb-3d3a-4596-a3bc-dad00e67656f (db, dbx)
pub const IMAGE_SECURITY_DATABASE: [u8; 16] = [0xcb, 0xb2, 0x19, 0xd7, 0x3a, 0x3d, 0x96, 0x45, 0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f];
/// A vendor GUID of our own for test variables.
pub const TEST_VENDOR: [u8; 16] = [0x5f, 0x1c, 0x7a, 0x2e, 0x90, 0x3b, 0x4d, 0x41, 0x8e, 0x26, 0x11, 0x6d, 0x3c, 0x57, 0xa9, 0x04];

pub const NV: u32 = 1;
pub const BS: u32 = 2;
pub const RT: u32 = 4;
pub const TIME_BASED_AUTH: u32 = 0x20;
pub const APPEND: u32 = 0x40;

pub const EFI_SUCCESS: u64 = 0;
pub const EFI_INVALID_PARAMETER: u64 = 0x8000_0000_0000_0002;
pub const EFI_BUFFER_TOO_SMALL: u64 = 0x8000_0000_0000_0005;
pub const EFI_OUT_OF_RESOURCES: u64 = 0x8000_0000_0000_0009;
pub const EFI_NOT_FOUND: u64 = 0x8000_0000_0000_000e;

pub fn put64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}
pub fn put32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
pub fn get64(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}
pub fn get32(b: &[u8], at: usize) -> u32 {
    let mut v = [0u8; 4];
    v.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(v)
}

/// UCS-2 of an ASCII name with its NUL: returns NameSize.
pub fn put_name(b: &mut [u8], at: usize, name: &[u8]) -> usize {
    for (i, c) in name.iter().enumerate() {
        b[at + 2 * i] = *c;
        b[at + 2 * i + 1] = 0;
    }
    b[at + 2 * name.len()] = 0;
    b[at + 2 * name.len() + 1] = 0;
    2 * (name.len() + 1)
}

/// Writes both headers; returns the offset of the function's payload.
fn headers(b: &mut [u8], function: u64, payload: usize) -> usize {
    b[..16].copy_from_slice(&SMM_VARIABLE);
    put64(b, 16, (VARIABLE_HEADER + payload) as u64);
    put64(b, 24, function);
    put64(b, 32, 0);
    MM_HEADER + VARIABLE_HEADER
}


/// GetVariable with the caller's DataSize (edk2 clamps the data area to the payload size).
pub fn get_variable(b: &mut [u8], guid: &[u8; 16], name: &[u8], data_size: usize) -> usize {
    let name_size = 2 * (name.len() + 1);
    let room = MAX_BUFFER_SIZE - MM_HEADER - VARIABLE_HEADER - ACCESS_NAME - name_size;
    let data = data_size.min(room);
    let payload = ACCESS_NAME + name_size + data;
    let at = headers(b, GET_VARIABLE, payload);
    b[at..at + 16].copy_from_slice(guid);
    put64(b, at + 16, data as u64);
    put64(b, at + 24, name_size as u64);
    put32(b, at + 32, 0);
    put_name(b, at + ACCESS_NAME, name);
    b[at + ACCESS_NAME + name_size..at + payload].fill(0);
    MM_HEADER + VARIABLE_HEADER + payload
}

pub fn set_variable(b: &mut [u8], guid: &[u8; 16], name: &[u8], attributes: u32, data: &[u8]) -> usize {
    let name_size = 2 * (name.len() + 1);
    let payload = ACCESS_NAME + name_size + data.len();
    let at = headers(b, SET_VARIABLE, payload);
    b[at..at + 16].copy_from_slice(guid);
    put64(b, at + 16, data.len() as u64);
    put64(b, at + 24, name_size as u64);
    put32(b, at + 32, attributes);
    put_name(b, at + ACCESS_NAME, name);
    b[at + ACCESS_NAME + name_size..at + payload].copy_from_slice(data);
    MM_HEADER + VARIABLE_HEADER + payload
}

/// GetNextVariableName after (guid, previous name in UCS-2, NUL included), with the caller's
/// buffer of `name_buffer` bytes: the payload holds MAX(caller's size, previous name's size).
pub fn get_next_variable_name(b: &mut [u8], guid: &[u8; 16], previous: &[u8], name_buffer: usize) -> usize {
    let payload = NEXT_NAME + name_buffer.max(previous.len());
    let at = headers(b, GET_NEXT_VARIABLE_NAME, payload);
    b[at..at + 16].copy_from_slice(guid);
    put64(b, at + 16, name_buffer as u64);
    b[at + NEXT_NAME..at + payload].fill(0);
    b[at + NEXT_NAME..at + NEXT_NAME + previous.len()].copy_from_slice(previous);
    MM_HEADER + VARIABLE_HEADER + payload
}

pub fn query_variable_info(b: &mut [u8], attributes: u32) -> usize {
    let at = headers(b, QUERY_VARIABLE_INFO, 28);
    b[at..at + 24].fill(0);
    put32(b, at + 24, attributes);
    MM_HEADER + VARIABLE_HEADER + 28
}

pub fn get_payload_size(b: &mut [u8]) -> usize {
    let at = headers(b, GET_PAYLOAD_SIZE, 8);
    put64(b, at, 0);
    MM_HEADER + VARIABLE_HEADER + 8
}

/// ReturnStatus of a reply.
pub fn status(b: &[u8]) -> u64 {
    get64(b, 32)
}
