/** File readers for data sets: CSV (RFC 4180, any encoding), JSON, JSON Lines. */
export { DataError } from "./DataError.ts";
export { CsvParser, type CsvParserOptions, type CsvRecord } from "./CsvParser.ts";
export { readCsv, parseCsv, streamCsv, type CsvOptions, type CsvRow } from "./readCsv.ts";
export { readJson, readJsonl, streamJsonl, type JsonReadOptions } from "./readJson.ts";
export { detectEncoding, decodeText, decodeFileChunks, type TextEncoding, type DetectedEncoding } from "./encoding.ts";
