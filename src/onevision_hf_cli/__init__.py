"""The ``onevision-hf`` console script: `onevision_hf.cli` with the package's ``__init__`` run only when needed.

``import onevision_hf`` imports torch and transformers (it registers the Auto classes), seconds of work that
``onevision-hf --help``, a subcommand's ``--help`` and a usage error do not need. This module, outside the
package, loads ``onevision_hf`` without running its ``__init__`` (the standard `importlib.util.module_from_spec`
recipe: the module object exists, its code has not run), builds and parses the command line from
`onevision_hf.cli` and `onevision_hf.commands` (whose modules import nothing heavy at module level), and only then
runs ``onevision_hf/__init__.py`` in that same module object and hands the parsed arguments to
`onevision_hf.cli.run`. ``python -m onevision_hf.cli`` (``torchrun``, ``accelerate launch``) imports the package
the ordinary way and gives the same command line.
"""

import importlib
import importlib.util
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the subcommand; returns its exit code."""
    package = sys.modules.get("onevision_hf")
    spec = None
    if package is None:  # the usual case: a fresh console-script process
        spec = importlib.util.find_spec("onevision_hf")
        package = importlib.util.module_from_spec(spec)
        sys.modules["onevision_hf"] = package
    try:
        cli = importlib.import_module("onevision_hf.cli")
        parser = cli.build_parser()
        args = parser.parse_args(argv)  # --help and usage errors exit here, before torch is imported
    except BaseException:
        if spec is not None:  # never leave a half-initialised package behind
            for name in [name for name in sys.modules if name == "onevision_hf" or name.startswith("onevision_hf.")]:
                del sys.modules[name]
        raise
    if spec is not None:
        spec.loader.exec_module(package)  # onevision_hf/__init__.py: transformers, torch, the Auto classes
    return cli.run(parser, args)
