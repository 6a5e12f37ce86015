/**
 * src/vhd — the VHD format (Microsoft VHD spec v1.0; blktap conformance rules): pure codecs of
 * footer, dynamic header, BAT, sector bitmaps and parent locators driven by field tables; a
 * one-pass stream reader; a random-access reader over a byte source and a chain reader; a stream
 * writer (dynamic or differencing) with the length known up front; the `vhd-util check` rules.
 */
export * from './constants.ts';
export * from './errors.ts';
export * from './checksum.ts';
export * from './geometry.ts';
export * from './timestamp.ts';
export * from './uuid.ts';
export * from './footer.ts';
export * from './header.ts';
export * from './parent-locator.ts';
export * from './bat.ts';
export * from './sector-bitmap.ts';
export * from './layout.ts';
export * from './stream-cursor.ts';
export * from './stream-reader.ts';
export * from './byte-source.ts';
export * from './vhd-reader.ts';
export * from './parent-resolver.ts';
export * from './chain-reader.ts';
export * from './vhd-plan.ts';
export * from './stream-writer.ts';
export * from './check.ts';
