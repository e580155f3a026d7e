"""Stage 1 of the suite: local backups, written as increments into cycles, sealed, announced.

It also holds what the three packages share: the spool formats (the contract with the uploader
and restore), the restore engine every restore ends in, typed config reading and crash-safe
writes. It imports nothing from ``uploader`` or ``watcher``.

The modules, by what they do:

Backup
    ``step``         one backup step, ``backup`` and ``seal``: run_backup_step, seal_open_cycle
    ``plan``         which increment comes next, a pure decision: plan_backup
    ``spool``        cycle directories, the spool lock, recovery after a crash: Spool, CycleDir
    ``increment``    one increment: write_increment (scan -> changes -> tar and index)
    ``scan``         the walk of the sources, byte paths and lstat
    ``sources``      missing sources (gone, unreadable, unmounted): carried, never deleted
    ``exclude``      gitignore-like exclude patterns
    ``changes``      change detection against the base index, and the new index
    ``tarwriter``    the pax tar writer: buffer, file copies, sparse files
    ``paxheader``    the bytes of pax/ustar headers (and the pax mtime read back)
    ``index``        the increment index format: Index, read_index, write_index
    ``seal``         ``cycle.json`` and the marker of a complete cycle

Formats
    ``formats``      increment manifests, ``cycle.json`` and markers: parse and render

Restore
    ``pointintime``  which cycle, increment and chain of increments a restore uses
    ``pathmatch``    path patterns of ``files`` and ``restore --path``: PathSelection
    ``extract``      the restore engine: Extractor, ExtractOptions, ExtractStats, ExtractError
    ``safepath``     where an archive member may be written: member_parts, SafeTree
    ``staging``      how a restore reaches its target: staged_target, check_target
    ``integrity``    what is read checked against its manifest: VerifyingReader
    ``spoolrestore`` a restore from a spool cycle: restore_from_cycle_dir

Shared
    ``config``       the ``[backup]`` section: BackupConfig, backup_config
    ``configkit``    typed TOML tables, durations and sizes: Section, ConfigError
    ``paths``        the XDG default directories, ensure_private_dir
    ``atomic``       crash-safe writes: atomic_write_bytes, atomic_create (a new file only),
                     temp_name, fsync_dir (the only one)
    ``fileio``       chunk size, private modes, opening and creating files

What the other packages use: ``watcher`` reads ``config``, runs ``step``, reads the ``spool``,
``formats`` and ``index``, and restores from the spool (``pointintime``, ``staging``,
``spoolrestore``); the uploader bundles and uploads what ``formats`` describes and ends its
restores in ``extract`` (with ``integrity``, ``staging``, ``pointintime``); both use
``configkit``, ``paths`` and ``atomic``.

Import from the modules themselves: this file imports nothing, so that the CLI importing
``localbackup.paths`` or ``localbackup.configkit`` does not load the backup engine (zstandard,
structlog) it may not need.
"""
