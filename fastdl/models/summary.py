"""model.summary() in Keras 3's layout: a table with box-drawing borders (the layer's name
and type, output shape, parameter count; connected-to for functional models) and the
total, trainable and non-trainable counts with their size. Column widths follow Keras:
88 characters (108 with connections), at most the terminal's width - 4, split at the
same relative positions, then shrunk by one character at a time from the left the way
rich fits a table, with text wrapped at spaces and over-long words cut with '…'.
"""
import shutil

from fastdl import _validate as v


# Wider than any screen or file viewer shows; what asks for more is a mistake.
MAX_LINE = 10_000


def _fractions(positions, columns):
    """positions: where each of the `columns` columns ends, as increasing fractions of the
    line in (0, 1]."""
    if isinstance(positions, (str, bytes)) or not hasattr(positions, "__len__"):
        raise TypeError(f"positions: expected a list of {columns} fractions, got "
                        f"{type(positions).__name__}")
    if len(positions) != columns:
        raise ValueError(f"positions: expected {columns} fractions (one per column), got "
                         f"{len(positions)}")
    out = [v.real(p, "positions", 0.0, 1.0) for p in positions]
    if any(b <= a for a, b in zip([0.0] + out, out)):
        raise ValueError(f"positions: expected increasing fractions in (0, 1], got "
                         f"{list(positions)}")
    return out


def _column_widths(line_length, positions):
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("line_length: too narrow to print the summary")
        widths.append(width)
        current += width
    # The borders take len + 1 characters: shrink the columns (each holding 2 of padding)
    # by the excess, spread evenly with the remainder rounded half to even, left first.
    excess, remaining = sum(widths) - (line_length - len(widths) - 1), len(widths)
    out = []
    for w in widths:
        cut = round(excess / remaining) if remaining else 0
        out.append(w - cut)
        excess -= cut
        remaining -= 1
    return [w - 2 for w in out]  # without the padding


def _wrap(text, width):
    """Lines of at most `width` characters: words wrapped at spaces, a word longer than
    the width cut to width - 1 characters and '…'."""
    lines, line = [], ""
    for word in text.split(" "):
        candidate = f"{line} {word}" if line else word
        if len(candidate) <= width or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return [w if len(w) <= width else w[:width - 1] + "…" for w in lines]


def readable_size(nbytes):
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if nbytes / 1024 < 1:
            return f"{nbytes:.2f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.2f} PB"


def render(name, header, rows, right_aligned, counts, line_length=None, positions=None):
    """The summary text. rows: lists of cell strings; counts: (trainable, non_trainable)."""
    default = 88 if len(header) == 3 else 108
    if positions is None:
        positions = [0.45, 0.80, 1.0] if len(header) == 3 else [0.3, 0.56, 0.74, 1.0]
    positions = _fractions(positions, len(header))
    if line_length is None:
        line_length = min(default, shutil.get_terminal_size().columns - 4)
    line_length = v.integer(line_length, "line_length", 1, maximum=MAX_LINE)
    widths = _column_widths(line_length, positions)

    def border(left, fill, middle, right):
        return left + middle.join(fill * (w + 2) for w in widths) + right

    def row_lines(cells, heavy=False):
        wrapped = [_wrap(c, w) for c, w in zip(cells, widths)]
        height = max(len(w) for w in wrapped)
        bar = "┃" if heavy else "│"
        out = []
        for i in range(height):
            parts = []
            for col, (lines, w) in enumerate(zip(wrapped, widths)):
                text = lines[i] if i < len(lines) else ""
                parts.append(text.rjust(w) if col in right_aligned else text.ljust(w))
            out.append(bar + bar.join(f" {p} " for p in parts) + bar)
        return out

    lines = [f'Model: "{name}"', border("┏", "━", "┳", "┓")]
    lines += row_lines(header, heavy=True)
    lines.append(border("┡", "━", "╇", "┩"))
    for i, row in enumerate(rows):
        if i:
            lines.append(border("├", "─", "┼", "┤"))
        lines += row_lines(row)
    lines.append(border("└", "─", "┴", "┘"))
    trainable, non_trainable = counts
    total = trainable + non_trainable
    for label, n in (("Total", total), ("Trainable", trainable),
                     ("Non-trainable", non_trainable)):
        lines.append(f" {label} params: {n:,} ({readable_size(4 * n)})")
    return "\n".join(lines)
