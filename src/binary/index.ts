/**
 * src/binary — checked big-endian readers and writers shared by the codecs (NBD, VHD, repository
 * indexes). Decoders built on them throw typed errors naming the field instead of reading garbage.
 */
export * from './errors.ts';
export * from './byte-reader.ts';
export * from './byte-writer.ts';
export * from './field-table.ts';
