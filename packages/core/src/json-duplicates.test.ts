import { describe, expect, it } from 'vitest';
import { findDuplicateKey } from './json-duplicates.js';

describe('findDuplicateKey', () => {
  it('finds a repeated top-level key that JSON.parse would silently collapse', () => {
    const text = '{"a": {"x": 1}, "b": 2, "a": {"x": 3}}';
    expect(Object.keys(JSON.parse(text))).toEqual(['a', 'b']);
    expect(findDuplicateKey(text)).toEqual(['a']);
  });

  it('finds a repeated field inside a nested object and names its path', () => {
    expect(findDuplicateKey('{"t": {"dtype": "F32", "shape": [1], "dtype": "F16"}}')).toEqual(['t', 'dtype']);
  });

  it('compares keys decoded, so an escaped spelling is the same key', () => {
    expect(findDuplicateKey('{"a": 1, "\\u0061": 2}')).toEqual(['a']);
  });

  it('accepts equal keys in different objects, keys inside strings and arrays of objects', () => {
    expect(findDuplicateKey('{"a": {"k": 1}, "b": {"k": 1}, "c": "\\"a\\": 1, \\"a\\"", "d": [{"k": 1}, {"k": 2}]}')).toBeUndefined();
    expect(findDuplicateKey('[1, "x", {"a": 1}]')).toBeUndefined();
  });
});
