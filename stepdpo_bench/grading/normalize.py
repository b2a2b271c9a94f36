"""Textual normalisation of final answers.

Everything here is plain string work (regexes over bounded input): it is the fast path that decides most
comparisons without sympy, and the canonical form that the structural parser and the symbolic layer start from.
Both the prediction and the gold answer go through the same function, so a rule never favours one side.

Two rules need care (docs/grading.md):

- **Commas.**  ``1,234,567`` (groups of three, no spaces, no leading zero group) is one number; ``32, 349`` is
  two.  When the gold is a list, commas in the prediction are list separators, never thousands separators.
- **Units and words.**  A unit or counted noun after a number is presentation (``6 feet``, ``7 divisors``,
  ``120 \\text{ in}^2``) and is dropped, but remembered: two answers that both name a unit must name the same
  one.  Number words (``twenty-one``) and percent words (``28 percent``) are read as numbers.
"""

from __future__ import annotations

import re

# unit -> canonical unit.  Only whole words from this table are dropped, so a trailing variable (``4t``) is never
# mistaken for a unit; one- and two-letter units (``m``, ``g``, ``in``) count only after a number and a space.
_UNIT_TABLE = {
    "unit": "units|unit",
    "sq unit": "square units|sq units|sq. units|units^2|unit^2",
    "cu unit": "cubic units|units^3",
    "ft": "feet|foot|ft",
    "in": "inches|inch|in",
    "yd": "yards|yard|yd",
    "mi": "miles|mile|mi",
    "m": "meters|meter|metres|metre|m",
    "cm": "centimeters|centimeter|centimetres|centimetre|cm",
    "mm": "millimeters|millimeter|mm",
    "km": "kilometers|kilometer|km",
    "sq ft": "square feet|square foot|sq ft|sq. ft|ft^2|feet^2",
    "sq in": "square inches|square inch|sq in|sq. in|in^2|inches^2",
    "sq m": "square meters|square metres|m^2|meters^2",
    "sq cm": "square centimeters|square centimetres|cm^2|centimeters^2",
    "sq mi": "square miles|mi^2|miles^2",
    "sq yd": "square yards|yd^2|yards^2",
    "cu ft": "cubic feet|ft^3|feet^3",
    "cu in": "cubic inches|in^3|inches^3",
    "cu m": "cubic meters|m^3|meters^3",
    "cu cm": "cubic centimeters|cm^3|centimeters^3",
    "deg": "degrees|degree",
    "rad": "radians|radian",
    "$": "dollars|dollar",
    "cent": "cents|cent",
    "s": "seconds|second|sec|secs|s",
    "min": "minutes|minute|mins|min",
    "h": "hours|hour|hrs|hr|h",
    "day": "days|day",
    "week": "weeks|week",
    "month": "months|month",
    "year": "years|year|yrs",
    "mph": "mph|miles per hour",
    "km/h": "km/h|kmh|km/hr|kph|kilometers per hour|kilometres per hour",
    "m/s": "m/s|meters per second|metres per second",
    "ft/s": "ft/s|feet per second",
    "in/s": "in/s|inches per second",
    "lb": "pounds|pound|lbs|lb",
    "oz": "ounces|ounce|oz",
    "g": "grams|gram|g",
    "kg": "kilograms|kilogram|kg",
    "gal": "gallons|gallon|gal",
    "l": "liters|liter|litres|litre",
    "%": "percent|percentage|pct",
}
UNITS = {name: canon for canon, names in _UNIT_TABLE.items() for name in names.split("|")}
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in UNITS), key=len, reverse=True))
_UNIT_TAIL = re.compile(rf"^(?P<head>.*?)(?P<sep>\s*)(?P<unit>{_UNIT_ALT})\.?$")
_UNIT_TEXT = re.compile(
    r"\\(?:text|mbox|textrm|mathrm|textnormal|rm)\s*\{\s*([a-zA-Z][a-zA-Z. ]*?)\s*\}(\^\{?[23]\}?)?"
)
_COUNTED = re.compile(r"^(-?[\d.,/]+|\\frac\{[^{}]+\}\{[^{}]+\})\s+([a-zA-Z]{3,})$")
MATH_WORDS = frozenset(
    [
        "sin",
        "cos",
        "tan",
        "cot",
        "sec",
        "csc",
        "log",
        "ln",
        "exp",
        "mod",
        "max",
        "min",
        "gcd",
        "lcm",
        "arg",
        "det",
        "deg",
        "lim",
        "sinh",
        "cosh",
        "tanh",
    ]
)

_SPACING = re.compile(r"(?<!\\)\\[,;: ]|\\q?quad|~")
_DOUBLED = re.compile(r"(?<!\\)\\\\(?=[A-Za-z{}()\[\]])")  # \\frac from text escaped twice -> \frac
_THIN_THOUSANDS = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")  # 32,\! 349: a thousands comma
_LEFT_RIGHT = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg)(?![a-zA-Z])")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°")
_FRAC_SHORT = re.compile(r"\\frac\s*(\d|\\?[a-zA-Z])\s*(\d|\\?[a-zA-Z])")
_FRAC_HALF = re.compile(r"\\frac\s*(\d|[a-zA-Z])\s*(\{)")
_FRAC_HALF2 = re.compile(r"\\frac\s*(\{[^{}]*\})\s*(\d|[a-zA-Z])")
_SQRT_SHORT = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z])")  # \sqrt13 is written for \sqrt{13}, not \sqrt{1}3
_TEXT_WRAP = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm|mathbf|mathit|boldsymbol|operatorname|rm)\s*\{([^{}]*)\}"
)
THOUSANDS = re.compile(r"(?<![\d.,])-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?(?![\d,])")
_LIST_WORDS = re.compile(
    r"\s+(?:and|or)\s+|\s*\\(?:text|mbox)\{\s*(?:and|or)\s*\}\s*|(?<=[)\]}])\s*(?:and|or)\s*(?=[(\[{])"
)
_WS = re.compile(r"\s+")
_SPACE_NOT_BETWEEN_LETTERS = re.compile(r"(?<![A-Za-z])\s|\s(?![A-Za-z])")


def strip_delimiters(s: str) -> str:
    """Remove surrounding math-mode delimiters, whitespace and end-of-sentence punctuation."""
    prev = None
    s = s.strip()
    while s != prev:
        prev = s
        s = s.strip().rstrip(".").rstrip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
        if s.startswith("\\displaystyle"):
            s = s[len("\\displaystyle") :]
    return s


def is_list_text(s: str) -> bool:
    """Is this answer a list of items (so commas in the other side are separators)?  ``1, 2``, ``\\{1,2\\}``,
    ``1,2`` (not a thousands grouping); ``1,234`` is one number."""
    t = _THIN_THOUSANDS.sub(",", strip_delimiters(s)).replace("\\!", "").replace("{,}", "")
    t = _LIST_WORDS.sub(", ", t)  # "12 and 13", "1 \\text{ or } 2": lists
    if "\\{" in t or re.search(r",\s", t) or ";" in t:
        return True
    rest = THOUSANDS.sub("0", t.replace("{,}", ""))
    return "," in re.sub(r"[(\[][^()\[\]]*[)\]]", "", rest)


def normalize(s: str, list_gold: bool = False) -> str:
    """Canonical text form of an answer: same for every reasonable way of writing the same thing.

    Deliberately conservative: it drops presentation (spacing commands, ``\\left``, ``\\dfrac``, degrees, percent and
    dollar signs, known units, thousands separators) but never content, so near-misses stay distinguishable.
    ``list_gold``: the other side is a list, so commas here are separators.
    """
    return normalize_with_unit(s, list_gold)[0]


def normalize_with_unit(s: str, list_gold: bool = False) -> tuple[str, str | None]:
    """``normalize`` and the canonical unit that was dropped (``6 feet`` -> ``("6", "ft")``), if any."""
    units: list[str] = []
    s = _DOUBLED.sub(r"\\", strip_delimiters(s)) if "\\\\" in s else strip_delimiters(s)
    s = _THIN_THOUSANDS.sub(",", s).replace("\\!", "")
    s = s.replace("\\displaystyle", "").replace("\\$", "").replace("$", "").replace("€", "").replace("£", "")
    s = s.replace("²", "^2").replace("³", "^3")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = _SPACING.sub(" ", s)
    s = _LEFT_RIGHT.sub("", s)
    s = s.replace("\\{", "\x00LB").replace("\\}", "\x00RB")  # protect set braces from brace-oriented rules

    def text_unit(m: re.Match[str]) -> str:
        word = m.group(1).strip().rstrip(".")
        word = word.lower() if len(word) > 2 else word  # "M" is a name, "m" a unit
        key = f"{word}^{m.group(2).strip('^{}')}" if m.group(2) else word
        canon = UNITS.get(key) or UNITS.get(word)
        before = m.string[: m.start()].rstrip()
        if canon is None or not before or before[-1] not in "0123456789})":
            return m.group(0)  # a unit follows the number it measures
        units.append(canon)
        return ""

    s = _UNIT_TEXT.sub(text_unit, s)
    s = _trailing_unit_text(s, units)
    # Unwrap \text{...}-style wrappers (inner-most first, bounded by the input length).
    for _ in range(8):
        new = _TEXT_WRAP.sub(r"\1", s)
        if new == s:
            break
        s = new
    s = _LIST_WORDS.sub(",", s)
    s = _DEGREES.sub("", s)
    s = s.replace("\\%", "").replace("%", "")
    s = s.replace("\\cdot", "\\cdot ")
    s = s.replace("{,}", "")  # 1{,}000: TeX's thousands separator
    s = s.replace("\x00LB", "\\{").replace("\x00RB", "\\}")
    s = _FRAC_SHORT.sub(r"\\frac{\1}{\2}", s)
    s = _FRAC_HALF.sub(r"\\frac{\1}\2", s)
    s = _FRAC_HALF2.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    s = _WS.sub(" ", s).strip()
    s, unit = _drop_unit(s)
    if unit:
        units.append(unit)
    if not list_gold:  # thousands separators only where the digits are grouped by threes with no spaces
        s = THOUSANDS.sub(lambda m: m.group(0).replace(",", ""), s)
    if re.fullmatch(r"-?\d{1,3}(?: \d{3})+", s):  # 1 000 000
        s = s.replace(" ", "")
    s = _SPACE_NOT_BETWEEN_LETTERS.sub("", s)
    s = strip_delimiters(s).rstrip(",;")
    s = _unbrace(s)
    words = number_from_words(s)
    return (str(words) if words is not None else s), (units[-1] if units else None)


_TRAILING_TEXT = re.compile(
    r"^(?P<head>.*\S)\s*\\(?:text|mbox|textrm|mathrm|textnormal|rm)\s*\{\s*(?P<words>[A-Za-z][A-Za-z. /]*?)\s*\}\s*$"
)


def _trailing_unit_text(s: str, units: list[str]) -> str:
    """``12\\pi \\text{ inches per second}``: words in a text group after a value (a symbolic one too) are its
    unit; dropped, and remembered when the unit table knows them.  Never a whole-text answer (``\\text{none}``),
    never after an operator (``x = \\text{...}``), never a lone letter (``2\\text{i}``)."""
    m = _TRAILING_TEXT.match(s)
    if not m:
        return s
    head, words = m.group("head"), m.group("words").strip().rstrip(".")
    if head[-1] in "=+-*/^_(,{<>" or len(words) < 2 or words.lower() in ("and", "or"):
        return s
    canon = UNITS.get(words.lower()) or UNITS.get(words)
    if canon:
        units.append(canon)
    return head


def _drop_unit(s: str) -> tuple[str, str | None]:
    """``6 feet`` -> ``6``; ``7 divisors`` -> ``7`` (a counted noun); ``4t`` and ``5m`` stay (no space: a variable).
    Returns the text and the canonical unit dropped."""
    found = None
    for _ in range(2):  # "5 cm^2", then a stray "square"
        m = _UNIT_TAIL.match(s)
        if not m:
            break
        head, sep, unit = m.group("head").rstrip(), m.group("sep"), m.group("unit")
        if not head or head[-1] in "\\^_=+-*/(":
            break
        after_letter = head[-1].isalpha()
        if not sep and (after_letter or len(unit) < 2):
            break  # "4t", "5m", "\\sin": a variable or a command, not a unit
        if after_letter and len(unit) < 2:
            break  # "x m": a variable named m
        s, found = head, found or UNITS[unit]
    m = _COUNTED.match(s)
    if m and m.group(2).lower() not in MATH_WORDS:
        s = m.group(1)
    return s, found


def _unbrace(s: str) -> str:
    """``{17}`` -> ``17``: TeX grouping braces around a whole answer are presentation; ``{1,3}`` stays a set."""
    while s.startswith("{") and s.endswith("}") and _closes_at_end(s):
        inner = s[1:-1]
        if "," in inner:
            return "\\{" + inner + "\\}"
        s = inner
    return s


def _closes_at_end(s: str) -> bool:
    depth = 0
    for i, c in enumerate(s):
        depth += c == "{"
        depth -= c == "}"
        if depth == 0 and i < len(s) - 1:
            return False
    return depth == 0


_ONES_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_ONES = {w: i for i, w in enumerate(_ONES_WORDS)}
_TENS_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_TENS = {w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS)}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


def number_from_words(s: str) -> int | None:
    """``seven`` -> 7, ``twenty-one`` -> 21, ``one hundred five`` -> 105; None unless the whole text is a number
    in words."""
    words = re.split(r"[\s-]+", s.lower().replace(" and ", " ").strip())
    if not words or not all(w in _ONES or w in _TENS or w in _SCALES for w in words):
        return None
    total, current = 0, 0
    for w in words:
        if w in _ONES:
            current += _ONES[w]
        elif w in _TENS:
            current += _TENS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALES[w]
            current = 0
    return total + current


_CHOICE = re.compile(r"^\(?\s*([A-F])\s*\)?$")


def choice_letters(s: str) -> str | None:
    """``(C)``, ``\\text{(C)}``, ``C``, ``$C$``, ``C)`` -> ``"C"``; ``B, F``-style lists -> ``"BF"`` (sorted).

    Returns None when the text is not a multiple-choice answer.
    """
    t = normalize(s)
    m = _CHOICE.match(t)
    if m:
        return m.group(1).upper()
    t2 = t.replace(" ", "")
    if re.fullmatch(r"\(?[A-F]\)?(?:(?:,|and|&)\(?[A-F]\)?)+", t2):
        return "".join(sorted(set(re.findall(r"[A-F]", t2))))
    return None
