// A restricted unpickler (protocols 2-5): it builds plain values and calls only the globals it is given.
// Any other global (os.system, builtins.eval, subprocess.Popen, ...) is refused when it is named, before
// anything could run; nothing in the data is ever executed.

export type PickleValue = unknown;

/** What a permitted global does when the pickle calls it (REDUCE / NEWOBJ) or uses it as a value. */
export interface AllowedGlobal {
  call?: (args: PickleValue[]) => PickleValue;
  /** The value when the global itself is used as data (e.g. a storage type in a persistent id). */
  value?: PickleValue;
}

export class GlobalRef {
  constructor(readonly qualified: string, readonly impl: AllowedGlobal) {}
}

export class UnpicklingRefused extends Error {}

export interface UnpickleOptions {
  globals: Record<string, AllowedGlobal>;
  persistentLoad?: (pid: PickleValue) => PickleValue;
}

const MARK = Symbol('mark');
const decoder = new TextDecoder('utf-8', { fatal: true });

export function unpickle(data: Uint8Array, opts: UnpickleOptions): PickleValue {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const stack: PickleValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PickleValue>();
  let p = 0;

  const need = (n: number) => {
    if (p + n > data.length) throw new Error('pickle: truncated data');
  };
  const u8 = () => (need(1), data[p++]!);
  const u16 = () => (need(2), (p += 2), view.getUint16(p - 2, true));
  const u32 = () => (need(4), (p += 4), view.getUint32(p - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(p, true);
    p += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error('pickle: length too large');
    return Number(v);
  };
  const bytes = (n: number) => (need(n), (p += n), data.subarray(p - n, p));
  const line = () => {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw new Error('pickle: truncated line');
    const s = Buffer.from(data.subarray(p, end)).toString('latin1');
    p = end + 1;
    return s;
  };
  const pop = () => {
    if (stack.length === 0) throw new Error('pickle: stack underflow');
    return stack.pop();
  };
  const top = () => stack[stack.length - 1];
  const popMark = () => {
    const m = marks.pop();
    if (m === undefined) throw new Error('pickle: no mark');
    return stack.splice(m);
  };
  const global = (module: string, name: string) => {
    const q = `${module}.${name}`;
    const impl = opts.globals[q];
    if (!impl) throw new UnpicklingRefused(`refusing to unpickle global "${q}": only tensors and plain containers are allowed`);
    return new GlobalRef(q, impl);
  };
  const call = (fn: PickleValue, args: PickleValue) => {
    if (!(fn instanceof GlobalRef) || !fn.impl.call) throw new UnpicklingRefused(`pickle calls something that is not callable here (${describe(fn)})`);
    if (!Array.isArray(args)) throw new Error('pickle: call arguments are not a tuple');
    return fn.impl.call(args);
  };
  const setItem = (d: PickleValue, k: PickleValue, v: PickleValue) => {
    if (!(d instanceof Map)) throw new Error('pickle: SETITEM on a non-dict');
    d.set(k, v);
  };
  const asValue = (v: PickleValue) => (v instanceof GlobalRef && 'value' in v.impl ? v.impl.value : v);

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME: framing only groups opcodes
      case 0x2e: return stack.length ? asValue(pop()) : undefined; // STOP
      case 0x28: marks.push(stack.length); break; // MARK
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT
      case 0x5d: case 0x29: stack.push([]); break; // EMPTY_LIST, EMPTY_TUPLE
      case 0x74: stack.push(popMark()); break; // TUPLE
      case 0x85: stack.push([pop()]); break;
      case 0x86: { const b = pop(); stack.push([pop(), b]); break; }
      case 0x87: { const c = pop(); const b = pop(); stack.push([pop(), b, c]); break; }
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: { // BINGET, LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        if (!memo.has(k)) throw new Error(`pickle: memo ${k} missing`);
        stack.push(memo.get(k));
        break;
      }
      case 0x4a: need(4); stack.push(view.getInt32(p, true)); p += 4; break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: case 0x8b: stack.push(longLE(bytes(op === 0x8a ? u8() : u32()))); break; // LONG1, LONG4
      case 0x47: need(8); stack.push(view.getFloat64(p, false)); p += 8; break; // BINFLOAT (big-endian)
      case 0x58: stack.push(decoder.decode(bytes(u32()))); break; // BINUNICODE
      case 0x8c: stack.push(decoder.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(decoder.decode(bytes(u64()))); break; // BINUNICODE8
      case 0x54: stack.push(Buffer.from(bytes(u32())).toString('latin1')); break; // BINSTRING (py2 str)
      case 0x55: stack.push(Buffer.from(bytes(u8())).toString('latin1')); break; // SHORT_BINSTRING
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES
      case 0x8e: case 0x96: stack.push(bytes(u64()).slice()); break; // BINBYTES8, BYTEARRAY8
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break;
      case 0x89: stack.push(false); break;
      case 0x63: { const module = line(); stack.push(global(module, line())); break; } // GLOBAL
      case 0x93: { const name = pop(); const module = pop(); stack.push(global(String(module), String(name))); break; } // STACK_GLOBAL
      case 0x52: { const args = pop(); stack.push(call(pop(), args)); break; } // REDUCE
      case 0x81: { const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ (cls.__new__(cls, *args))
      case 0x92: { pop(); const args = pop(); stack.push(call(pop(), args)); break; } // NEWOBJ_EX (kwargs dropped)
      case 0x62: pop(); break; // BUILD: the state of permitted objects (e.g. a state dict's _metadata) is not needed
      case 0x73: { const v = pop(); const k = pop(); setItem(top(), asValue(k), asValue(v)); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        for (let i = 0; i + 1 < items.length; i += 2) setItem(top(), asValue(items[i]), asValue(items[i + 1]));
        break;
      }
      case 0x61: { const v = pop(); appendTo(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); appendTo(top(), items); break; } // APPENDS
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { const items = popMark(); const s = top(); if (!(s instanceof Set)) throw new Error('pickle: ADDITEMS on a non-set'); items.forEach((i) => s.add(i)); break; }
      case 0x91: stack.push(new Set(popMark())); break; // FROZENSET
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw new UnpicklingRefused('pickle has a persistent id but no loader was given');
        stack.push(opts.persistentLoad(asPlain(pid)));
        break;
      }
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        throw new UnpicklingRefused(`unsupported pickle opcode 0x${op.toString(16)} at byte ${p - 1}`);
    }
  }
}

function appendTo(list: PickleValue, items: PickleValue[]): void {
  if (!Array.isArray(list)) throw new Error('pickle: APPEND on a non-list');
  list.push(...items);
}

/** Globals used as data (storage types in persistent ids) become their plain values. */
function asPlain(v: PickleValue): PickleValue {
  if (Array.isArray(v)) return v.map(asPlain);
  return v instanceof GlobalRef && 'value' in v.impl ? v.impl.value : v;
}

/** Python's two's-complement little-endian long; a Number when it is exact, else a BigInt. */
function longLE(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function describe(v: PickleValue): string {
  if (v instanceof GlobalRef) return v.qualified;
  if (v instanceof Map) return 'a dict';
  if (Array.isArray(v)) return 'a tuple or list';
  return typeof v;
}
