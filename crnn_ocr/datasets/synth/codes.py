"""Code-like strings as they are printed: licence plates, IBANs, VINs, serial and part numbers, barcodes' digits,
MAC addresses, postcodes, invoice and lot numbers. Check digits are real (IBAN mod 97, EAN-13, UPC-A), so a
model cannot learn them as noise.

>>> import random
>>> iban(random.Random(0), grouped=False)[:2].isalpha()
True
"""

from __future__ import annotations

import random
import string

LETTERS = string.ascii_uppercase
DIGITS = string.digits
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
PLATE_CONSONANTS = "BCDFGHJKLMNPRSTVWXYZ"
HEX = "0123456789ABCDEF"

# pattern letters: A a capital, 9 a digit, C a consonant, X a capital or digit; anything else is written as is
PLATE_PATTERNS = (
    "AA-999-AA",        # France, Italy without the space
    "AA 999AA",         # Italy
    "9999 CCC",         # Spain
    "AA99 AAA",         # United Kingdom
    "99-AAA-9", "AA-999-A", "9-AAA-99",  # Netherlands
    "AA 99999", "AAA 9A99",  # Poland
    "9A9 9999",         # Czechia
    "AA 999999",        # Switzerland
    "AAA-999", "AAA 999",  # Nordic, Baltic
    "9AAA999", "AAA 9999", "AAA-9999", "999 AAA",  # United States
    "AA-99-99", "99-AA-99",  # Portugal
    "A 999 AA", "A 9999 AA",  # Austria, Slovakia-like
)
POSTCODE_PATTERNS = ("AA9A 9AA", "A9 9AA", "A99 9AA", "9999 AA", "A9A 9A9", "99-999", "99999", "99999-9999",
                     "999 99", "9999")


def fill(pattern: str, rng: random.Random) -> str:
    pools = {"A": LETTERS, "9": DIGITS, "C": PLATE_CONSONANTS, "X": LETTERS + DIGITS}
    return "".join(rng.choice(pools[c]) if c in pools else c for c in pattern)


def plate(rng: random.Random) -> str:
    if rng.random() < 0.25:  # Germany: district, letters, digits
        district = fill("A" * rng.randint(1, 3), rng)
        return f"{district}{rng.choice((' ', '-'))}{fill('A' * rng.randint(1, 2), rng)} {rng.randint(1, 9999)}"
    return fill(rng.choice(PLATE_PATTERNS), rng)


IBAN_BBAN = {"DE": "999999999999999999", "FR": "9999999999XXXXXXXXXXX99", "GB": "AAAA99999999999999",
             "NL": "AAAA9999999999", "ES": "99999999999999999999", "IT": "A9999999999XXXXXXXXXXXX",
             "PL": "999999999999999999999999", "CZ": "99999999999999999999", "CH": "99999XXXXXXXXXXXX",
             "AT": "9999999999999999", "BE": "999999999999", "SE": "99999999999999999999"}


def iban(rng: random.Random, grouped: bool | None = None) -> str:
    country = rng.choice(sorted(IBAN_BBAN))
    bban = fill(IBAN_BBAN[country], rng)
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    code = f"{country}{98 - number % 97:02d}{bban}"
    if grouped is None:
        grouped = rng.random() < 0.7
    return " ".join(code[i:i + 4] for i in range(0, len(code), 4)) if grouped else code


def ean13(rng: random.Random) -> str:
    digits = [rng.randint(0, 9) for _ in range(12)]
    check = (10 - sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits)) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def upc_a(rng: random.Random) -> str:
    digits = [rng.randint(0, 9) for _ in range(11)]
    check = (10 - (3 * sum(digits[0::2]) + sum(digits[1::2])) % 10) % 10
    return "".join(map(str, digits)) + str(check)


def vin(rng: random.Random) -> str:
    return "".join(rng.choice(VIN_CHARS) for _ in range(17))


def serial(rng: random.Random) -> str:
    body = rng.choice((
        lambda: "-".join(fill("X" * rng.randint(3, 5), rng) for _ in range(rng.randint(2, 4))),
        lambda: fill("AA" + "9" * rng.randint(6, 10), rng),
        lambda: fill("9" * rng.randint(8, 12), rng),
        lambda: fill("AAA" + "9" * rng.randint(4, 6) + "AA", rng),
    ))()
    return rng.choice(("S/N ", "S/N: ", "SN ", "SN: ", "Serial No. ", "Ser. No. ", "")) + body


def part_number(rng: random.Random) -> str:
    body = rng.choice((
        lambda: fill("99-9999-99", rng), lambda: fill("AAA-9999-A", rng), lambda: fill("999 999", rng),
        lambda: fill("A" * rng.randint(1, 3) + "-" + "9" * rng.randint(3, 5), rng),
        lambda: fill("9999.999.99" if rng.random() < 0.5 else "99.999.999", rng),
    ))()
    return rng.choice(("P/N ", "PN: ", "Part No. ", "Art.-Nr. ", "REF ", "Model: ", "Type ", "")) + body


def mac(rng: random.Random) -> str:
    pairs = ["".join(rng.choice(HEX) for _ in range(2)) for _ in range(6)]
    text = rng.choice((":", "-")).join(pairs)
    return text.lower() if rng.random() < 0.4 else text


def hex_id(rng: random.Random) -> str:
    text = "-".join("".join(rng.choice(HEX) for _ in range(n)) for n in (8, 4, 4)[: rng.randint(1, 3)])
    return text.lower() if rng.random() < 0.5 else text


def postcode(rng: random.Random) -> str:
    return fill(rng.choice(POSTCODE_PATTERNS), rng)


def document_number(rng: random.Random) -> str:
    year = rng.randint(2015, 2032)
    return rng.choice((
        f"INV-{year}-{rng.randint(1, 99999):05d}", f"Order #{rng.randint(10000, 9999999)}",
        f"No. {rng.randint(1, 9999999):07d}", f"LOT {fill('A9' + 'X' * rng.randint(3, 6), rng)}",
        f"EXP {rng.randint(1, 12):02d}/{year}", f"Batch {fill('99A99', rng)}", f"Ticket {rng.randint(100, 999999)}",
    ))


FAMILIES = {"plate": (plate, 0.3), "iban": (iban, 0.1), "vin": (vin, 0.05), "serial": (serial, 0.15),
            "part": (part_number, 0.15), "ean": (lambda rng: ean13(rng) if rng.random() < 0.7 else upc_a(rng), 0.07),
            "mac": (mac, 0.04), "hex": (hex_id, 0.04), "postcode": (postcode, 0.04), "document": (document_number, 0.06)}


def code_family(rng: random.Random) -> str:
    names = list(FAMILIES)
    return rng.choices(names, weights=[FAMILIES[n][1] for n in names])[0]


def sample_code(rng: random.Random, family: str | None = None) -> str:
    """One code-like string of `family` (see FAMILIES), drawn by the families' shares when None."""
    return FAMILIES[family or code_family(rng)][0](rng)
