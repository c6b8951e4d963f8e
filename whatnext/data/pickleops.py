"""A pickle reader that runs nothing: the opcodes become plain values and inert call records.

``pickle.Unpickler`` calls every callable a file names, hands the file's state to C code that trusts it,
sizes its memo by the largest index the file asks for and frees what it built with the C stack. This module
reads the opcodes itself instead (protocols 0-5) and builds only Python primitives (None, bool, int,
float, str, bytes), tuples, lists, dicts and two inert records: :class:`Global` (a name the file asks for,
admitted only from an allow-list) and :class:`Call` (what a REDUCE/NEWOBJ/BUILD would have done, not done).
:mod:`whatnext.data.safepickle` then builds a DataFrame from these records with its own checks.

Bounds, all by the file: every length is checked against the bytes left before anything is read; the memo is
a dict (a huge index costs one entry); a container that is already inside another can no longer change, so
nesting is measured when it is made (at most :data:`MAX_DEPTH`) and no structure can hold itself; no
opcode copies more than its own bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

#: deepest nesting of containers and call records; a DataFrame needs about 12
MAX_DEPTH = 100
HIGHEST_PROTOCOL = 5


class Invalid(Exception):
    """The bytes are not a pickle this reader accepts; the message says what was found."""


class Refused(Exception):
    """The pickle names a global outside the allow-list; the message is the dotted name."""


class Global:
    """A module attribute the pickle names (a class or a function); never imported."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.name}"


class Call:
    """``func(*args)`` as the pickle asks (REDUCE, NEWOBJ, INST, OBJ), then ``state`` (BUILD); never called."""

    __slots__ = ("args", "built", "func", "state")

    def __init__(self, func: Global, args: tuple[Any, ...]) -> None:
        self.func, self.args, self.built = func, args, False
        self.state: Any = None


Push = Callable[[object], None]
Op = Callable[["Reader", Push], None]


_PRIMITIVE = (type(None), bool, int, float, str, bytes)


def _fail(what: str) -> Invalid:
    return Invalid(what)


class Reader:
    """Runs the opcodes of one pickle; :meth:`load` returns the top object."""

    def __init__(self, raw: bytes, allowed: Iterable[tuple[str, str]]) -> None:
        self.buf = bytes(raw)
        self.pos = 0
        self.allowed = frozenset(allowed)
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.depth: dict[int, int] = {}  # id -> nesting depth of every container made (kept alive by keep)
        self.frozen: set[int] = set()  # ids of containers already inside another: they may not change
        self.keep: list[object] = []

    # ---------------------------------------------------------------- bytes
    def _take(self, n: int) -> bytes:
        if n < 0 or n > len(self.buf) - self.pos:
            raise _fail(f"the file ends early: {n} bytes wanted at byte {self.pos}, {len(self.buf) - self.pos} left "
                        f"(truncated, or a damaged length)")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def _line(self) -> str:
        end = self.buf.find(b"\n", self.pos, self.pos + (1 << 16))
        if end < 0:
            raise _fail(f"an unterminated text line at byte {self.pos}")
        try:
            text = bytes(self._take(end + 1 - self.pos)[:-1]).decode("ascii")
        except UnicodeDecodeError:
            raise _fail(f"non-ASCII text before byte {self.pos}") from None
        return text

    def _uint(self, n: int) -> int:
        return int.from_bytes(self._take(n), "little")

    # ---------------------------------------------------------------- containers
    def _made(self, obj: object, children: Iterable[object]) -> object:
        """Register a new container ``obj`` holding ``children``: they freeze; its depth follows theirs."""
        d = 1
        for c in children:
            d = max(d, self._adopt(c) + 1)
        if d > MAX_DEPTH:
            raise _fail(f"objects nested more than {MAX_DEPTH} deep")
        self.depth[id(obj)] = d
        self.keep.append(obj)
        return obj

    def _adopt(self, child: object) -> int:
        """``child`` goes inside a container: it may not change any more; its depth."""
        if isinstance(child, (*_PRIMITIVE, Global)) or child == ():
            return 0
        self.frozen.add(id(child))
        return self.depth[id(child)]

    def _grow(self, container: object, children: Iterable[object]) -> None:
        """Add ``children`` to an existing list, dict or call record (APPEND, SETITEM, BUILD)."""
        if id(container) in self.frozen:
            raise _fail("a container changed after it was put inside another (a recursive or rewritten structure)")
        d = self.depth[id(container)]
        for c in children:
            if type(c) in _PRIMITIVE:  # most children: text and numbers
                continue
            if c is container:
                raise _fail("a container that holds itself")
            d = max(d, self._adopt(c) + 1)
        if d > MAX_DEPTH:
            raise _fail(f"objects nested more than {MAX_DEPTH} deep")
        self.depth[id(container)] = d

    # ---------------------------------------------------------------- stack
    def _pop(self) -> object:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise _fail(f"the stack is empty at byte {self.pos}")
        return self.stack.pop()

    def _pop_mark(self) -> list[object]:
        if not self.marks:
            raise _fail(f"no MARK before byte {self.pos}")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def _top(self) -> object:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise _fail(f"the stack is empty at byte {self.pos}")
        return self.stack[-1]

    def _global(self, module: object, name: object) -> Global:
        if not isinstance(module, str) or not isinstance(name, str):
            raise _fail("a global named by something other than text")
        if (module, name) not in self.allowed:
            raise Refused(f"{module}.{name}")
        return Global(module, name)

    def _call(self, func: object, args: object) -> Call:
        if not isinstance(func, Global):
            raise _fail(f"a call of a {type(func).__name__}, not of a named class or function")
        if not isinstance(args, tuple):
            raise _fail(f"call arguments given as a {type(args).__name__}, expected a tuple")
        call = Call(func, args)
        self._made(call, (args,))
        return call

    def _setitems(self, target: object, items: list[object]) -> None:
        if not isinstance(target, dict) or len(items) % 2:
            raise _fail("SETITEM(S) on something other than a dict")
        for k in items[::2]:
            if type(k) not in (str, int, bytes, float, bool, type(None)):
                raise _fail(f"a dict key of type {type(k).__name__}")
            if type(k) is int and not -(1 << 63) <= k < 1 << 63:  # a huge int is hashed anew every time
                raise _fail("a dict key that is a number of more than 64 bits")
        self._grow(target, items[1::2])
        for k, v in zip(items[::2], items[1::2]):
            target[k] = v

    def _build(self, obj: object, state: object) -> None:
        if isinstance(obj, Global):
            raise _fail(f"state applied to the class {obj.dotted} itself (it would change the class for the whole process)")
        if not isinstance(obj, Call) or obj.built:
            raise _fail("BUILD on something other than a freshly made object")
        self._grow(obj, (state,))
        obj.state, obj.built = state, True

    # ---------------------------------------------------------------- the loop
    def load(self) -> object:
        buf, size, stack, memo, marks = self.buf, len(self.buf), self.stack, self.memo, self.marks
        push = stack.append
        ops = _OPS
        while True:
            pos = self.pos
            if pos >= size:
                raise _fail("the file ends early: no STOP at the end (truncated)")
            code = buf[pos]
            self.pos = pos = pos + 1
            # the opcodes of every string and memo entry, inline: a large table is mostly these
            if code == 0x8C or code == 0x58:  # SHORT_BINUNICODE, BINUNICODE
                width = 1 if code == 0x8C else 4
                end = pos + width + int.from_bytes(buf[pos:pos + width], "little")
                if pos + width > size or end > size:
                    self._take(size + 1)  # raises the "ends early" error
                try:
                    push(str(buf[pos + width:end], "utf-8"))
                except UnicodeDecodeError:
                    raise _fail(f"text that is not UTF-8 before byte {end}") from None
                self.pos = end
            elif code == 0x94:  # MEMOIZE
                if not stack or (marks and len(stack) <= marks[-1]):
                    raise _fail(f"the stack is empty at byte {pos}")
                memo[len(memo)] = stack[-1]
            elif code == 0x71:  # BINPUT
                if pos >= size or not stack or (marks and len(stack) <= marks[-1]):
                    raise _fail(f"BINPUT with an empty stack or at the end of the file, at byte {pos}")
                memo[buf[pos]] = stack[-1]
                self.pos = pos + 1
            elif code == 0x68:  # BINGET
                if pos >= size or buf[pos] not in memo:
                    raise _fail(f"memo entry {buf[pos] if pos < size else '?'} is read before it is written")
                push(memo[buf[pos]])
                self.pos = pos + 1
            elif code == 0x2E:  # STOP
                if marks or len(stack) != 1:
                    raise _fail("the pickle stops with a malformed stack")
                if pos != size:
                    raise _fail(f"{size - pos} bytes after the end of the pickle")
                return stack.pop()
            else:
                handler = ops.get(code)
                if handler is None:
                    raise _fail(f"unsupported pickle opcode 0x{code:02x} at byte {pos - 1}")
                handler(self, push)


def _int_text(s: str) -> int:
    try:
        return int(s.rstrip("L"))
    except ValueError:
        raise _fail(f"not a whole number: {s[:20]!r}") from None


def _op_int(r: Reader, push: Push) -> None:
    s = r._line()
    push(True if s == "01" else False if s == "00" else _int_text(s))


def _op_float(r: Reader, push: Push) -> None:
    s = r._line()
    try:
        push(float(s))
    except ValueError:
        raise _fail(f"not a number: {s[:20]!r}") from None


def _op_string(r: Reader, push: Push) -> None:
    s = r._line()
    if len(s) < 2 or s[0] != s[-1] or s[0] not in "'\"":
        raise _fail("a malformed STRING")
    body = s[1:-1]
    if "\\" in body:
        raise _fail("an escaped protocol-0 STRING")
    push(body)


def _op_unicode(r: Reader, push: Push) -> None:
    end = r.buf.find(b"\n", r.pos)
    if end < 0:
        raise _fail("an unterminated UNICODE")
    try:
        push(bytes(r._take(end + 1 - r.pos)[:-1]).decode("raw-unicode-escape"))
    except UnicodeDecodeError:
        raise _fail("a malformed UNICODE") from None


def _text(n_len: int) -> Op:
    def op(r: Reader, push: Push) -> None:
        data = r._take(r._uint(n_len))
        try:
            push(str(data, "utf-8"))
        except UnicodeDecodeError:
            raise _fail(f"text that is not UTF-8 before byte {r.pos}") from None
    return op


def _ascii(n_len: int) -> Op:
    def op(r: Reader, push: Push) -> None:
        try:
            push(str(r._take(r._uint(n_len)), "ascii"))
        except UnicodeDecodeError:
            raise _fail(f"a Python 2 string that is not ASCII before byte {r.pos}") from None
    return op


def _bytes(n_len: int, kind: type = bytes) -> Op:
    def op(r: Reader, push: Push) -> None:
        push(bytes(r._take(r._uint(n_len))) if kind is bytes else r._made(bytearray(r._take(r._uint(n_len))), ()))
    return op


def _long(n_len: int) -> Op:
    def op(r: Reader, push: Push) -> None:
        push(int.from_bytes(r._take(r._uint(n_len)), "little", signed=True))
    return op


def _tuple_n(n: int) -> Op:
    def op(r: Reader, push: Push) -> None:
        items = [r._pop() for _ in range(n)][::-1]
        t = tuple(items)
        push(r._made(t, items) if n else t)
    return op


def _op_tuple(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    t = tuple(items)
    push(r._made(t, items) if items else t)


def _op_list(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    push(r._made(list(items), items))


def _op_dict(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    d: dict = r._made({}, ())  # type: ignore[assignment]
    r._setitems(d, items)
    push(d)


def _op_append(r: Reader, push: Push) -> None:
    value = r._pop()
    target = r._top()
    if not isinstance(target, list):
        raise _fail("APPEND to something other than a list")
    r._grow(target, (value,))
    target.append(value)


def _op_appends(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    target = r._top()
    if not isinstance(target, list):
        raise _fail("APPENDS to something other than a list")
    r._grow(target, items)
    target.extend(items)


def _op_setitem(r: Reader, push: Push) -> None:
    value = r._pop()
    key = r._pop()
    r._setitems(r._top(), [key, value])


def _op_setitems(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    r._setitems(r._top(), items)


def _op_get_text(r: Reader, push: Push) -> None:
    _get(r, push, _int_text(r._line()))


def _op_put_text(r: Reader, push: Push) -> None:
    _put(r, _int_text(r._line()))


def _get(r: Reader, push: Push, i: int) -> None:
    if i not in r.memo:
        raise _fail(f"memo entry {i} is read before it is written")
    push(r.memo[i])


def _put(r: Reader, i: int) -> None:
    if i < 0:
        raise _fail(f"a negative memo index {i}")
    r.memo[i] = r._top()


def _sized(n: int, fn) -> Op:
    def op(r: Reader, push: Push) -> None:
        fn(r, push, r._uint(n)) if fn is _get else fn(r, r._uint(n))
    return op


def _op_memoize(r: Reader, push: Push) -> None:
    _put(r, len(r.memo))


def _op_global(r: Reader, push: Push) -> None:
    module = r._line()
    push(r._global(module, r._line()))


def _op_stack_global(r: Reader, push: Push) -> None:
    name = r._pop()
    module = r._pop()
    push(r._global(module, name))


def _op_reduce(r: Reader, push: Push) -> None:
    args = r._pop()
    func = r._pop()
    if isinstance(func, Global) and func.name == "_reconstructor":  # protocols 0-1: copyreg's object.__new__(cls)
        if not (isinstance(args, tuple) and len(args) == 3 and isinstance(args[0], Global)
                and isinstance(args[1], Global) and args[1].name == "object" and args[2] is None):
            raise _fail("a malformed copyreg._reconstructor call")
        func, args = args[0], ()
    push(r._call(func, args))


def _op_newobj(r: Reader, push: Push) -> None:
    args = r._pop()
    cls = r._pop()
    push(r._call(cls, args))


def _op_newobj_ex(r: Reader, push: Push) -> None:
    kwargs = r._pop()
    args = r._pop()
    cls = r._pop()
    if kwargs != {}:
        raise _fail("NEWOBJ_EX with keyword arguments")
    push(r._call(cls, args))


def _op_inst(r: Reader, push: Push) -> None:
    module = r._line()
    cls = r._global(module, r._line())
    items = r._pop_mark()
    args = tuple(items)
    push(r._call(cls, r._made(args, items) if items else args))


def _op_obj(r: Reader, push: Push) -> None:
    items = r._pop_mark()
    if not items:
        raise _fail("OBJ without a class")
    args = tuple(items[1:])
    push(r._call(items[0], r._made(args, items[1:]) if items[1:] else args))


def _op_build(r: Reader, push: Push) -> None:
    state = r._pop()
    r._build(r._top(), state)


def _op_proto(r: Reader, push: Push) -> None:
    v = r._uint(1)
    if v > HIGHEST_PROTOCOL:
        raise _fail(f"pickle protocol {v}, expected 0 to {HIGHEST_PROTOCOL}")


def _op_frame(r: Reader, push: Push) -> None:
    n = r._uint(8)
    if n > len(r.buf) - r.pos:
        raise _fail(f"the file ends early: a frame of {n} bytes at byte {r.pos}, {len(r.buf) - r.pos} left "
                    f"(truncated, or a damaged length)")


def _op_mark(r: Reader, push: Push) -> None:
    r.marks.append(len(r.stack))


def _op_pop(r: Reader, push: Push) -> None:
    if r.marks and len(r.stack) == r.marks[-1]:
        r.marks.pop()  # POP of a MARK, as pickle does
    else:
        r._pop()


def _op_pop_mark(r: Reader, push: Push) -> None:
    r._pop_mark()


def _op_dup(r: Reader, push: Push) -> None:
    push(r._top())


def _refuse(what: str) -> Op:
    def op(r: Reader, push: Push) -> None:
        raise _fail(f"{what} at byte {r.pos - 1}, which no DataFrame pickle holds")
    return op


def _const(value: object) -> Op:
    def op(r: Reader, push: Push) -> None:
        push(value)
    return op


def _empty(kind: type) -> Op:
    def op(r: Reader, push: Push) -> None:
        push(r._made(kind(), ()))
    return op


_OPS_BY_CHAR = {
    "(": _op_mark, "0": _op_pop, "1": _op_pop_mark, "2": _op_dup,
    "F": _op_float, "I": _op_int, "L": _op_int, "N": _const(None), "R": _op_reduce,
    "S": _op_string, "V": _op_unicode, "a": _op_append, "b": _op_build, "c": _op_global, "d": _op_dict,
    "}": _empty(dict), "e": _op_appends, "g": _op_get_text, "h": _sized(1, _get), "i": _op_inst,
    "j": _sized(4, _get), "l": _op_list, "]": _empty(list), "o": _op_obj, "p": _op_put_text,
    "q": _sized(1, _put), "r": _sized(4, _put), "s": _op_setitem, "t": _op_tuple, ")": _const(()),
    "u": _op_setitems, "G": lambda r, push: push(struct.unpack(">d", r._take(8))[0]),
    "J": lambda r, push: push(int.from_bytes(r._take(4), "little", signed=True)),
    "K": lambda r, push: push(r._uint(1)), "M": lambda r, push: push(r._uint(2)),
    "T": _ascii(4), "U": _ascii(1), "X": _text(4),
    "\x80": _op_proto, "\x81": _op_newobj, "\x85": _tuple_n(1), "\x86": _tuple_n(2), "\x87": _tuple_n(3),
    "\x88": _const(True), "\x89": _const(False), "\x8a": _long(1), "\x8b": _long(4),
    "B": _bytes(4), "C": _bytes(1),
    "\x8c": _text(1), "\x8d": _text(8), "\x8e": _bytes(8), "\x92": _op_newobj_ex, "\x93": _op_stack_global,
    "\x94": _op_memoize, "\x95": _op_frame, "\x96": _bytes(8, bytearray),
    "P": _refuse("a persistent id (PERSID)"), "Q": _refuse("a persistent id (BINPERSID)"),
    "\x82": _refuse("an extension code (EXT1)"), "\x83": _refuse("an extension code (EXT2)"),
    "\x84": _refuse("an extension code (EXT4)"), "\x8f": _refuse("a set (EMPTY_SET)"),
    "\x90": _refuse("a set (ADDITEMS)"), "\x91": _refuse("a frozenset (FROZENSET)"),
    "\x97": _refuse("an out-of-band buffer (NEXT_BUFFER)"), "\x98": _refuse("a read-only buffer (READONLY_BUFFER)"),
}


_OPS = {ord(k): v for k, v in _OPS_BY_CHAR.items()}


def read(raw: bytes, allowed: Iterable[tuple[str, str]]) -> object:
    """The top object of the pickle ``raw``, as primitives, containers, :class:`Global` and :class:`Call`."""
    return Reader(raw, allowed).load()
