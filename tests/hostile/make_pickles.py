"""Hostile ``clean.pk`` files, written opcode by opcode: the corpus of ``tests/test_hostile_pickles.py``.

Every file names only globals that a real DataFrame pickle names (or a few it does not), and attacks the
reader's trust instead: block placements outside the frame, a dtype whose state hides an object field,
an Arrow array over empty buffers, a million-byte nest, a memo index of 2**32, declared lengths far past
the end of the file, state applied to a class, recursive and rewritten containers, shapes that do not
match their bytes, repeated objects that would multiply the memory, and the opcodes no DataFrame uses.
A plain ``pickle.load`` of several of them kills the process (a signal) or takes gigabytes; whatnext must
answer each with exit 3 and one line.

``python tests/hostile/make_pickles.py`` rewrites ``tests/hostile/pickles/``; the test checks that the
committed files are what this script writes, so the corpus is reproducible.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

OUT = Path(__file__).resolve().parent / "pickles"


class G:
    """A global: ``GLOBAL module name``."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name


class R:
    """``func(*args)`` (REDUCE, or NEWOBJ with ``new``), then ``state`` (BUILD) when given."""

    NO_STATE = object()

    def __init__(self, func: object, args: tuple = (), state: object = NO_STATE, new: bool = False) -> None:
        self.func, self.args, self.state, self.new = func, args, state, new


class Raw:
    """Bytes written as they are (opcodes no Python object produces)."""

    def __init__(self, data: bytes) -> None:
        self.data = data


def emit(x: object) -> bytes:
    """The opcodes (protocol 2 and 3, no memo) that rebuild ``x``."""
    if isinstance(x, Raw):
        return x.data
    if x is None:
        return b"N"
    if x is True:
        return b"\x88"
    if x is False:
        return b"\x89"
    if isinstance(x, int):
        if 0 <= x < 256:
            return b"K" + bytes([x])
        if -(2**31) <= x < 2**31:
            return b"J" + struct.pack("<i", x)
        n = (x.bit_length() + 8) // 8
        return b"\x8a" + bytes([n]) + x.to_bytes(n, "little", signed=True)
    if isinstance(x, float):
        return b"G" + struct.pack(">d", x)
    if isinstance(x, str):
        data = x.encode("utf-8")
        return b"X" + struct.pack("<I", len(data)) + data
    if isinstance(x, bytes):
        return b"B" + struct.pack("<I", len(x)) + x
    if isinstance(x, tuple):
        return b")" if not x else b"(" + b"".join(emit(v) for v in x) + b"t"
    if isinstance(x, list):
        return b"]" + (b"(" + b"".join(emit(v) for v in x) + b"e" if x else b"")
    if isinstance(x, dict):
        return b"}" + (b"(" + b"".join(emit(k) + emit(v) for k, v in x.items()) + b"u" if x else b"")
    if isinstance(x, G):
        return f"c{x.module}\n{x.name}\n".encode()
    if isinstance(x, R):
        out = emit(x.func) + emit(tuple(x.args)) + (b"\x81" if x.new else b"R")
        return out if x.state is R.NO_STATE else out + emit(x.state) + b"b"
    raise TypeError(type(x))


def pickle_of(x: object) -> bytes:
    return b"\x80\x03" + emit(x) + b"."


# ---------------------------------------------------------------- the pieces of a DataFrame, as pandas 3 writes them

def dtype(code: str, state: tuple | None = None) -> R:
    default = (3, "|" if code in ("b1", "O8", "i1", "u1") else "<", None, None, None, -1, -1, 63 if code == "O8" else 0)
    return R(G("numpy", "dtype"), (code, False, True), state if state is not None else default)


def array(code: str, shape: tuple, data: object, dt: R | None = None) -> R:
    return R(G("numpy._core.multiarray", "_reconstruct"), (G("numpy", "ndarray"), (0,), b"b"),
             (1, shape, dt or dtype(code), False, data))


def ints(values: list[int], rows: bool = True) -> R:
    data = b"".join(struct.pack("<q", v) for v in values)
    return array("i8", (1, len(values)) if rows else (len(values),), data)


def text_index(names: list[object]) -> R:
    return R(G("pandas.core.indexes.base", "_new_Index"),
             (G("pandas", "Index"), {"data": array("O8", (len(names),), list(names)), "name": None}))


def range_index(n: int) -> R:
    return R(G("pandas.core.indexes.base", "_new_Index"),
             (G("pandas", "RangeIndex"), {"name": None, "start": 0, "stop": n, "step": 1}))


def sl(start: int, stop: int) -> R:
    return R(G("builtins", "slice"), (start, stop, 1))


def block(values: object, where: object) -> R:
    return R(G("pandas._libs.internals", "_unpickle_block"), (values, where, 2))


def frame(blocks: list[R], columns: R, index: R) -> R:
    mgr = R(G("pandas.core.internals.managers", "BlockManager"), (tuple(blocks), [columns, index]))
    return R(G("pandas", "DataFrame"), (), {"_mgr": mgr, "_typ": "dataframe", "_metadata": [], "attrs": {},
                                            "_flags": {"allows_duplicate_labels": True}}, new=True)


def events(user: object = None, item: object = None, time: object = None, n: int = 3, index: R | None = None) -> R:
    """user_id, item_id (object text) and timestamp (int64): a frame whatnext loads; any piece replaceable."""
    user = user or block(array("O8", (1, n), [f"u{i % 2}" for i in range(n)]), sl(0, 1))
    item = item or block(array("O8", (1, n), [f"s{i}" for i in range(n)]), sl(1, 2))
    time = time or block(ints(list(range(10, 10 + n))), sl(2, 3))
    return frame([user, item, time], text_index(["user_id", "item_id", "timestamp"]), index or range_index(n))


def arrow_text(n: int, offsets: bytes, data: bytes, buffers: list | None = None) -> R:
    lib = "pyarrow.lib"
    buf = G(lib, "py_buffer")
    if buffers is None:
        buffers = [None, R(buf, (offsets,)), R(buf, (data,))]
    restore = R(G(lib, "_restore_array"), ((R(G(lib, "type_for_alias"), ("large_string",)), n, 0, 0,
                                            buffers, [], None),))
    return R(G("pandas.arrays", "ArrowStringArray"), (), {"_pa_array": restore, "_dtype": R(
        G("pandas", "StringDtype"), ("pyarrow", float("nan"))), "_cache": {}}, new=True)


# ---------------------------------------------------------------- the corpus

CASES: dict[str, Callable[[], bytes]] = {}


def case(fn: Callable[[], bytes]) -> Callable[[], bytes]:
    CASES[fn.__name__.removeprefix("_").replace("_", "-")] = fn
    return fn


def control() -> bytes:
    """The positive control: the same construction with nothing wrong loads (3 events)."""
    return pickle_of(events())


# block placements and shapes (pandas writes through these without checking)
@case
def _placement_past_the_columns() -> bytes:
    return pickle_of(events(time=block(ints([1, 2, 3]), sl(2, 3000))))


@case
def _placement_array_far_outside() -> bytes:
    where = array("i8", (1,), struct.pack("<q", 10**12))
    return pickle_of(events(time=block(ints([1, 2, 3]), where)))


@case
def _placement_negative() -> bytes:
    return pickle_of(events(time=block(ints([1, 2, 3]), array("i8", (1,), struct.pack("<q", -5)))))


@case
def _two_blocks_on_one_column() -> bytes:
    return pickle_of(events(time=block(ints([1, 2, 3]), sl(0, 1))))


@case
def _block_wider_than_its_placement() -> bytes:
    wide = array("i8", (2, 3), struct.pack("<6q", 1, 2, 3, 4, 5, 6))
    return pickle_of(events(time=block(wide, sl(2, 3))))


@case
def _column_longer_than_the_index() -> bytes:
    return pickle_of(events(index=range_index(2)))


@case
def _shape_bigger_than_its_bytes() -> bytes:
    return pickle_of(events(time=block(array("i8", (1, 10**9), struct.pack("<3q", 1, 2, 3)), sl(2, 3))))


@case
def _shape_overflowing() -> bytes:
    return pickle_of(events(time=block(array("i8", (2**62, 2**62), b""), sl(2, 3))))


@case
def _shape_negative() -> bytes:
    return pickle_of(events(time=block(array("i8", (1, -3), struct.pack("<3q", 1, 2, 3)), sl(2, 3))))


@case
def _three_dimensions() -> bytes:
    return pickle_of(events(time=block(array("i8", (1, 1, 3), struct.pack("<3q", 1, 2, 3)), sl(2, 3))))


# dtypes
@case
def _dtype_hiding_an_object_field() -> bytes:
    """Raw bytes read as a Python object: the state names a field of type object over integer bytes."""
    hidden = (3, "|", None, ("a",), {"a": (dtype("O8"), 0)}, 8, 1, 0)  # flags 0: numpy is told it holds no objects
    return pickle_of(events(time=block(array("V8", (1, 3), b"\x41" * 24, dtype("V8", hidden)), sl(2, 3))))


@case
def _dtype_with_object_flags() -> bytes:
    bad = (3, "<", None, None, None, -1, -1, 63)
    return pickle_of(events(time=block(array("i8", (1, 3), b"\x41" * 24, dtype("i8", bad)), sl(2, 3))))


@case
def _dtype_of_raw_bytes() -> bytes:
    return pickle_of(events(time=block(array("V8", (1, 3), b"\x00" * 24), sl(2, 3))))


@case
def _object_array_over_bytes() -> bytes:
    """An object dtype whose data are bytes: pointers made from the file."""
    return pickle_of(events(user=block(array("O8", (1, 3), b"\x41" * 24), sl(0, 1))))


@case
def _object_cell_a_nested_list() -> bytes:
    return pickle_of(events(user=block(array("O8", (1, 3), ["u1", ["u2"], "u3"]), sl(0, 1))))


@case
def _object_cell_a_class() -> bytes:
    return pickle_of(events(user=block(array("O8", (1, 3), ["u1", G("pandas", "DataFrame"), "u3"]), sl(0, 1))))


@case
def _date_unit_unknown() -> bytes:
    st = (4, "<", None, None, None, -1, -1, 0, (None, (b"fortnight", 1, 1, 1)))
    return pickle_of(events(time=block(array("M8", (1, 3), b"\x00" * 24, dtype("M8", st)), sl(2, 3))))


# pyarrow
@case
def _arrow_text_over_empty_buffers() -> bytes:
    """No buffers at all for 3 strings: pyarrow reads through null pointers."""
    return pickle_of(events(user=block(arrow_text(3, b"", b"", buffers=[]), sl(0, 1))))


@case
def _arrow_text_with_one_buffer() -> bytes:
    return pickle_of(events(user=block(arrow_text(3, b"", b"", buffers=[None]), sl(0, 1))))


@case
def _arrow_offsets_missing() -> bytes:
    return pickle_of(events(user=block(arrow_text(3, b"", b""), sl(0, 1))))


@case
def _arrow_offsets_past_the_data() -> bytes:
    return pickle_of(events(user=block(arrow_text(3, struct.pack("<4q", 0, 2, 4, 1 << 40), b"u1u2u3"), sl(0, 1))))


@case
def _arrow_offsets_going_back() -> bytes:
    return pickle_of(events(user=block(arrow_text(3, struct.pack("<4q", 0, 4, 2, 6), b"u1u2u3"), sl(0, 1))))


# nesting and recursion
@case
def _nested_tuples() -> bytes:
    return b"\x80\x02)" + b"\x85" * 10_000 + b"."


@case
def _slices_nested_300000_deep() -> bytes:
    """slice(slice(...slice(None)...)): a plain unpickler builds it, and freeing it overflows the C stack."""
    n = 300_000  # the callable DUPed n times, then the calls from the inside out: 3 bytes a level
    return b"\x80\x02cbuiltins\nslice\n" + b"2" * (n - 1) + b"N\x85R" + b"\x85R" * (n - 1) + b"."


@case
def _list_holding_itself() -> bytes:
    return b"\x80\x02]q\x00h\x00a."


@case
def _state_holding_the_frame() -> bytes:
    """The frame's own state dict names the frame (a cycle through the memo)."""
    return b"\x80\x02cpandas\nDataFrame\nq\x00)\x81q\x01}q\x02X\x04\x00\x00\x00_mgrh\x01sb."


@case
def _container_changed_after_use() -> bytes:
    """A list put inside a tuple, then grown through the memo: the measured nesting would be a lie."""
    return b"\x80\x02]q\x00h\x00\x85q\x01h\x00h\x01a0."


# memory out of proportion to the file
@case
def _memo_index_of_4_billion() -> bytes:
    return b"\x80\x04Nr\xff\xff\xff\xff."  # 9 bytes: LONG_BINPUT 0xffffffff


@case
def _bytearray_of_2_gb() -> bytes:
    return pickle_of(events(time=block(array("i8", (1, 3), R(G("builtins", "bytearray"), (2_000_000_000,))), sl(2, 3))))


@case
def _binbytes8_length_past_the_end() -> bytes:
    return b"\x80\x04\x8e" + struct.pack("<Q", 1 << 62) + b"abc."


@case
def _binunicode_length_past_the_end() -> bytes:
    return b"\x80\x02X\xff\xff\xff\xffabc."


@case
def _long4_length_past_the_end() -> bytes:
    return b"\x80\x02\x8b\xff\xff\xff\x7f\x01."


@case
def _frame_length_past_the_end() -> bytes:
    return b"\x80\x04\x95" + struct.pack("<Q", 1 << 60) + b"N."


@case
def _one_column_repeated_in_a_thousand_blocks() -> bytes:
    """One 16 kB column named by 1000 blocks through the memo: 16 MB of columns from a 30 kB file."""
    col = ints(list(range(2000)))
    n = 1000
    head = b"\x80\x02" + emit(col) + b"q\x000" + emit(G("pandas._libs.internals", "_unpickle_block")) + b"q\x010"
    blocks = b"(" + b"".join(b"h\x01h\x00" + emit(sl(i, i + 1)) + b"K\x02\x87R" for i in range(n)) + b"t"
    axes = b"](" + emit(text_index([f"c{i}" for i in range(n)])) + emit(range_index(2000)) + b"e"
    mgr = emit(G("pandas.core.internals.managers", "BlockManager")) + blocks + axes + b"\x86R"
    return head + emit(G("pandas", "DataFrame")) + b")\x81}(" + emit("_mgr") + mgr + b"ub."


@case
def _one_long_text_named_100000_times() -> bytes:
    """A 100 kB string as every user id through the memo: 600 kB of file, 10 GB of text once copied."""
    n = 100_000
    cells = b"X" + struct.pack("<I", 100_000) + b"u" * 100_000 + b"q\x00" + b"h\x00" * (n - 1)
    users = b"".join([emit(G("numpy._core.multiarray", "_reconstruct")), emit((G("numpy", "ndarray"), (0,), b"b")),
                      b"R(K\x01", emit((1, n)), emit(dtype("O8")), b"\x89](", cells, b"etb"])
    head = emit(G("pandas._libs.internals", "_unpickle_block")) + b"(" + users + emit(sl(0, 1)) + b"K\x02tR"
    mgr = emit(G("pandas.core.internals.managers", "BlockManager")) + b"(" + head + b"t](" + emit(
        text_index(["user_id"])) + emit(range_index(n)) + b"e\x86R"
    return b"\x80\x02" + emit(G("pandas", "DataFrame")) + b")\x81}(" + emit("_mgr") + mgr + b"ub."


@case
def _range_index_of_a_quadrillion_rows() -> bytes:
    return pickle_of(frame([], text_index([]), range_index(10**15)))


# names and labels
@case
def _column_names_not_text() -> bytes:
    return pickle_of(frame([block(ints([1, 2, 3]), sl(0, 1))], text_index([b"user_id"]), range_index(3)))


@case
def _column_name_a_huge_number() -> bytes:
    return pickle_of(frame([block(ints([1, 2, 3]), sl(0, 1))], text_index([10**30]), range_index(3)))


# state on classes, and names that are not data
@case
def _state_applied_to_a_class() -> bytes:
    """BUILD with slot state on the DataFrame class: would rewrite pandas for the rest of the process."""
    return b"\x80\x02cpandas\nDataFrame\nN}X\x08\x00\x00\x00__repr__Ns\x86b."


@case
def _global_outside_the_allow_list() -> bytes:
    return pickle_of(R(G("pandas", "read_pickle"), ("/etc/passwd",)))


@case
def _dotted_name_through_an_allowed_class() -> bytes:
    name = b"DataFrame.to_pickle.__globals__"
    return b"\x80\x04\x8c\x06pandas\x8c" + bytes([len(name)]) + name + b"\x93."


# malformed streams
@case
def _truncated_frame() -> bytes:
    return control()[:150]


@case
def _bytes_after_stop() -> bytes:
    return control() + b"N."


@case
def _unknown_opcode() -> bytes:
    return b"\x80\x02\xff."


@case
def _extension_code() -> bytes:
    return b"\x80\x02\x82\x01."


@case
def _persistent_id() -> bytes:
    return b"(Pabc\nt."


@case
def _stack_underflow() -> bytes:
    return b"\x80\x02R."


@case
def _unclosed_mark() -> bytes:
    return b"\x80\x02(N."


@case
def _memo_read_before_write() -> bytes:
    return b"\x80\x02h\x07."


@case
def _int_of_five_thousand_digits() -> bytes:
    return b"I" + b"9" * 5000 + b"\n."


@case
def _huge_number_as_a_dict_key_many_times() -> bytes:
    """A 10 kB number used as a dict key 10,000 times: Python hashes a big int anew each time (CPU, not memory)."""
    big = b"\x8b" + struct.pack("<i", 10_000) + b"\x7f" * 10_000
    return b"\x80\x02}" + big + b"q\x000(" + b"h\x00N" * 10_000 + b"u."


@case
def _newobj_ex_with_keywords() -> bytes:
    return b"\x80\x04cpandas\nDataFrame\n)}X\x01\x00\x00\x00aK\x01s\x92."


@case
def _set_of_values() -> bytes:
    return b"\x80\x04\x8f(K\x01\x90."


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.pk"):
        old.unlink()
    for name, make in CASES.items():
        (out / f"{name}.pk").write_bytes(make())
    print(f"{len(CASES)} hostile pickles in {out}", file=sys.stderr)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT)
