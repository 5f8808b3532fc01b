"""Sorted-set commands: ZADD, GEOADD, removals by member/score/rank/lex, pops, Z*STORE."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator

from toolkit.check.keyspace.args import (
    GEO_LAT,
    ArgError,
    Args,
    float_arg,
    geohash_score,
    gte_min,
    int_arg,
    lex_bound,
    lex_cmp,
    lte_max,
    rank_range,
    score_bound,
)
from toolkit.check.keyspace.model import KeyspaceModel, Skip
from toolkit.check.keyspace.values import Opaque, ZSetVal


class ZSetCommands(KeyspaceModel):
    """The sorted-set commands (a zset value is a ``ZSetVal``: member -> score)."""

    def _zset(self, key: bytes) -> ZSetVal | None:
        return self._lookup(key, ZSetVal)  # type: ignore[return-value]

    def c_zadd(self, a: Args) -> None:
        key = a[1]
        nx = xx = gt = lt = incr = False
        i = 2
        while i < len(a):
            o = a[i].upper()
            if o == b"NX":
                nx = True
            elif o == b"XX":
                xx = True
            elif o == b"GT":
                gt = True
            elif o == b"LT":
                lt = True
            elif o == b"CH":
                pass
            elif o == b"INCR":
                incr = True
            else:
                break
            i += 1
        rest = a[i:]
        if not rest or len(rest) % 2:
            raise ArgError("syntax error")
        if (nx and xx) or (nx and (gt or lt)) or (gt and lt):
            raise ArgError("XX and NX / GT, LT and NX options at the same time are not compatible")
        if incr and len(rest) != 2:
            raise ArgError("INCR option supports a single increment-element pair")
        pairs = [(float_arg(s), m) for s, m in zip(rest[::2], rest[1::2], strict=True)]
        self._zadd(key, pairs, nx=nx, xx=xx, gt=gt, lt=lt, incr=incr)

    def _zadd(
        self,
        key: bytes,
        pairs: list[tuple[float, bytes]],
        *,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
        incr: bool = False,
    ) -> None:
        z = self._zset(key)
        if z is None:
            if xx:
                return
            z = ZSetVal()
        for score, member in pairs:
            cur = z.get(member)
            if cur is None:
                if not xx:
                    z[member] = score
                continue
            if nx:
                continue
            new = cur + score if incr else score
            if math.isnan(new):
                raise ArgError("resulting score is not a number (NaN)")
            if (gt and new <= cur) or (lt and new >= cur):
                continue
            z[member] = new
        if z and key not in self._db.keys:
            self._db.keys[key] = z

    def c_zincrby(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        self._zadd(a[1], [(float_arg(a[2]), a[3])], incr=True)

    def c_geoadd(self, a: Args) -> None:
        nx = xx = False
        i = 2
        while i < len(a) and a[i].upper() in (b"NX", b"XX", b"CH"):
            o = a[i].upper()
            nx, xx = nx or o == b"NX", xx or o == b"XX"
            i += 1
        rest = a[i:]
        if not rest or len(rest) % 3 or (nx and xx):
            raise ArgError("syntax error")
        pairs = []
        for j in range(0, len(rest), 3):
            lon, lat = float_arg(rest[j]), float_arg(rest[j + 1])
            if not (-180 <= lon <= 180 and -GEO_LAT <= lat <= GEO_LAT):
                raise ArgError("invalid longitude,latitude pair")
            pairs.append((geohash_score(lon, lat), rest[j + 2]))
        self._zadd(a[1], pairs, nx=nx, xx=xx)

    def c_zrem(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        z = self._zset(a[1])
        if z is not None:
            for m in a[2:]:
                z.pop(m, None)
            self._drop_if_empty(a[1], z)

    def _remove(self, key: bytes, z: ZSetVal, members: Iterable[bytes]) -> None:
        for m in members:
            del z[m]
        self._drop_if_empty(key, z)

    def c_zremrangebyscore(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        lo, hi = score_bound(a[2]), score_bound(a[3])
        z = self._zset(a[1])
        if z is not None:
            self._remove(a[1], z, [m for m, s in z.items() if _in_score(s, lo, hi)])

    def c_zremrangebyrank(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        start, end = int_arg(a[2]), int_arg(a[3])
        z = self._zset(a[1])
        if z is not None:
            ranks = rank_range(start, end, len(z))
            if ranks:
                ordered = _sorted(z)
                self._remove(a[1], z, [ordered[r][0] for r in ranks])

    def c_zremrangebylex(self, a: Args) -> None:
        if len(a) != 4:
            raise ArgError("wrong number of arguments")
        lo, hi = lex_bound(a[2]), lex_bound(a[3])
        z = self._zset(a[1])
        if z is not None:
            self._remove(a[1], z, [m for m, _ in self._lex_range(z, lo, hi, False)])

    def _lex_range(
        self,
        z: ZSetVal,
        lo: tuple[bytes | None, bool, int],
        hi: tuple[bytes | None, bool, int],
        reverse: bool,
    ) -> list[tuple[bytes, float]]:
        """The members a lex range selects, scanning as a listpack-encoded zset does.

        With equal scores that is exactly the lex range. With mixed scores Redis's answer
        depends on the encoding (a skiplist's is random): the model marks itself approximate.
        """
        cmp = lex_cmp(lo, hi)
        if cmp > 0 or (cmp == 0 and (lo[1] or hi[1])):
            return []
        ordered = _sorted(z)
        if not ordered:
            return []
        if len(set(z.values())) > 1:
            self._approx("lex range over members of different scores")
        if not gte_min(ordered[-1][0], lo) or not lte_max(ordered[0][0], hi):
            return []
        out = []
        if reverse:
            ordered.reverse()
            it = iter(ordered)
            for m, s in it:
                if lte_max(m, hi):
                    if gte_min(m, lo):
                        out.append((m, s))
                        out.extend(_while(it, lambda ms: gte_min(ms[0], lo)))
                    break
        else:
            it = iter(ordered)
            for m, s in it:
                if gte_min(m, lo):
                    if lte_max(m, hi):
                        out.append((m, s))
                        out.extend(_while(it, lambda ms: lte_max(ms[0], hi)))
                    break
        return out

    def _zpop(self, key: bytes, z: ZSetVal, high: bool, count: int) -> None:
        if count >= len(z):
            self._delete(key)
            return
        ordered = _sorted(z)
        chosen = ordered[-count:] if high else ordered[:count]
        self._remove(key, z, [m for m, _ in chosen])

    def c_zpop(self, a: Args) -> None:
        if len(a) not in (2, 3):
            raise ArgError("wrong number of arguments")
        count = int_arg(a[2]) if len(a) == 3 else 1
        if count < 0:
            raise ArgError("value is out of range, must be positive")
        z = self._zset(a[1])
        if z is not None and count:
            self._zpop(a[1], z, a[0].upper() == b"ZPOPMAX", count)

    def c_bzpop(self, a: Args) -> None:
        if len(a) < 3:
            raise ArgError("wrong number of arguments")
        float_arg(a[-1])
        found = self._first_nonempty(a[1:-1], ZSetVal)
        if found is not None:
            self._zpop(found[0], found[1], a[0].upper() == b"BZPOPMAX", 1)  # type: ignore[arg-type]

    def c_zmpop(self, a: Args) -> None:
        blocking = a[0].upper() == b"BZMPOP"
        if blocking:
            float_arg(a[1])
        keys, low, count = self._mpop_args(a, 2 if blocking else 1, (b"MIN", b"MAX"))
        found = self._first_nonempty(keys, ZSetVal)
        if found is not None:
            self._zpop(found[0], found[1], not low, count)  # type: ignore[arg-type]

    def _zsource(self, key: bytes) -> dict[bytes, float] | None:
        v = self._db.keys.get(key)
        if v is None:
            return None
        if type(v) is ZSetVal:
            return v  # type: ignore[return-value]
        if type(v) is set:
            return dict.fromkeys(v, 1.0)  # type: ignore[arg-type]
        if isinstance(v, Opaque) and v.type in ("zset", "set"):
            self._approx(f"{v.type} command on a value the model cannot read")
            raise Skip
        raise ArgError("WRONGTYPE Operation against a key holding the wrong kind of value")

    def c_zsetop_store(self, a: Args) -> None:
        op = a[0].upper()
        dst, numkeys = a[1], int_arg(a[2])
        if numkeys < 1:
            raise ArgError("at least 1 input key is needed")
        keys = a[3 : 3 + numkeys]
        if len(keys) != numkeys:
            raise ArgError("syntax error")
        srcs = [self._zsource(k) or {} for k in keys]
        weights = [1.0] * numkeys
        aggregate = b"SUM"
        rest = a[3 + numkeys :]
        i = 0
        while i < len(rest):
            o = rest[i].upper()
            if op != b"ZDIFFSTORE" and o == b"WEIGHTS" and len(rest) - i > numkeys:
                weights = [float_arg(w) for w in rest[i + 1 : i + 1 + numkeys]]
                i += 1 + numkeys
            elif op != b"ZDIFFSTORE" and o == b"AGGREGATE" and len(rest) - i >= 2:
                aggregate = rest[i + 1].upper()
                if aggregate not in (b"SUM", b"MIN", b"MAX"):
                    raise ArgError("syntax error")
                i += 2
            else:
                raise ArgError("syntax error")
        result: dict[bytes, float] = {}
        if op == b"ZDIFFSTORE":
            result = dict(srcs[0])
            for s in srcs[1:]:
                for m in s:
                    result.pop(m, None)
        else:
            pairs = sorted(zip(srcs, weights, strict=True), key=lambda sw: len(sw[0]))
            if op == b"ZINTERSTORE":
                first, w0 = pairs[0]
                for m, s in first.items():
                    score = _weighted(s, w0)
                    for other, w in pairs[1:]:
                        if m not in other:
                            break
                        score = _aggregate(score, _weighted(other[m], w), aggregate)
                    else:
                        result[m] = score
            else:
                for src, w in pairs:
                    for m, s in src.items():
                        score = _weighted(s, w)
                        cur = result.get(m)
                        result[m] = score if cur is None else _aggregate(cur, score, aggregate)
        self._store(dst, ZSetVal(result), not result)

    def c_zrangestore(self, a: Args) -> None:
        dst, src = a[1], a[2]
        lo_arg, hi_arg = a[3], a[4]
        by = b"RANK"
        rev = False
        offset, limit = 0, -1
        limited = False
        i = 5
        while i < len(a):
            o = a[i].upper()
            if o == b"LIMIT" and len(a) - i > 2:
                offset, limit = int_arg(a[i + 1]), int_arg(a[i + 2])
                limited = True
                i += 2
            elif o == b"REV" and not rev:
                rev = True
            elif o in (b"BYSCORE", b"BYLEX") and by == b"RANK":
                by = o[2:]
            else:
                raise ArgError("syntax error")
            i += 1
        if limited and by == b"RANK":
            raise ArgError("LIMIT is only supported in combination with either BYSCORE or BYLEX")
        if rev and by != b"RANK":
            lo_arg, hi_arg = hi_arg, lo_arg
        chosen: list[tuple[bytes, float]]
        if by == b"RANK":
            start, end = int_arg(lo_arg), int_arg(hi_arg)
        elif by == b"SCORE":
            try:
                lo, hi = score_bound(lo_arg), score_bound(hi_arg)
            except ArgError:
                raise ArgError("min or max is not a float") from None
        else:
            lex_lo, lex_hi = lex_bound(lo_arg), lex_bound(hi_arg)
        z = self._zset(src)
        if z is None:
            self._delete(dst)
            return
        if by == b"RANK":
            ordered = _sorted(z)
            if rev:
                ordered.reverse()
            chosen = [ordered[r] for r in rank_range(start, end, len(ordered))]
        else:
            if by == b"SCORE":
                ordered = _sorted(z)
                if rev:
                    ordered.reverse()
                chosen = [(m, s) for m, s in ordered if _in_score(s, lo, hi)]
            else:
                chosen = self._lex_range(z, lex_lo, lex_hi, rev)
            if offset < 0 or (offset > 0 and offset >= len(z)):
                chosen = []
            else:
                chosen = chosen[offset:] if limit < 0 else chosen[offset : offset + limit]
        self._store(dst, ZSetVal(chosen), not chosen)


def _sorted(z: dict[bytes, float]) -> list[tuple[bytes, float]]:
    """A sorted set in Redis order: by score, then member bytes."""
    return sorted(z.items(), key=lambda kv: (kv[1], kv[0]))


def _while(it: Iterator[tuple[bytes, float]], pred: Callable) -> Iterator[tuple[bytes, float]]:
    for x in it:
        if not pred(x):
            return
        yield x


def _in_score(s: float, lo: tuple[float, bool], hi: tuple[float, bool]) -> bool:
    return (s > lo[0] if lo[1] else s >= lo[0]) and (s < hi[0] if hi[1] else s <= hi[0])


def _weighted(score: float, weight: float) -> float:
    v = score * weight
    return 0.0 if math.isnan(v) else v


def _aggregate(a: float, b: float, how: bytes) -> float:
    if how == b"SUM":
        v = a + b
        return 0.0 if math.isnan(v) else v
    return min(a, b) if how == b"MIN" else max(a, b)
