"""``matdesinne predict``: the surrogate's prediction for design rows from a CSV."""

from __future__ import annotations

from pathlib import Path

from matdesinne.cli import args as a


def add_parser(sub, name: str):
    p = sub.add_parser(name, help="predict the property of design rows with the surrogate")
    p.add_argument("--in", dest="inp", type=Path, required=True, help="CSV with the design-parameter columns")
    p.add_argument("--out", type=a.out_file, required=True, help="predictions CSV to write: the input's columns "
                                                                 "unchanged, plus <property>_pred and <property>_std")
    a.add_models(p, "models folder holding a surrogate")
    a.add_device(p)
    return p


def run(args) -> None:
    from matdesinne.io import check_distinct, check_writable, read_csv, write_csv
    from matdesinne.models import load_models
    from matdesinne.pipeline.predict import predict_frame

    check_writable(args.out)
    check_distinct([args.out], [args.inp])
    frame = read_csv(args.inp)
    models = load_models(args.models, generator=None, device=args.device, allow_mixed=args.allow_mixed,
                         space=args.space)
    check_distinct([args.out], [args.inp, *models.files])
    surrogate = models.surrogate
    out, outside = predict_frame(surrogate, frame, str(args.inp))
    write_csv(out, args.out)
    prop = " and ".join(p.name for p in surrogate.properties_)
    note = f"; {int(outside.sum())} row(s) lie outside the design space, where predictions extrapolate" if outside.any() else ""
    print(f"predicted {prop} for {len(out)} rows -> {args.out}{note}")
