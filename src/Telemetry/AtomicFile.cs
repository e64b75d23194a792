namespace DistEmu.Telemetry;

/// <summary>
/// A file written as PATH.tmp-PID and renamed to PATH when complete, so a file that exists is whole. Opening it
/// at once makes an unwritable path fail before a run starts.
/// </summary>
public sealed class AtomicFile : IDisposable
{
    private readonly string _path;
    private readonly string _tmp;
    private bool _done;

    public AtomicFile(string path)
    {
        _path = Path.GetFullPath(path);
        _tmp = _path + ".tmp-" + Environment.ProcessId;
        Stream = new FileStream(_tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16);
    }

    public FileStream Stream { get; }

    /// <summary>
    /// Flush and move into place. Whole for readers and across a crash of this process, like the results folder; not
    /// fsynced against power loss: a trace is reproduced from its seed, and syncing a fully sampled trace of hundreds of
    /// MB cost a fifth of the run's host time (bench tracing).
    /// </summary>
    public void Commit() => CommitAs(_path);

    /// <summary>Flush and move into place under another name (a trace file that turned out to need no split).</summary>
    public void CommitAs(string path)
    {
        if (_done) return;
        _done = true;
        Stream.Flush();
        Stream.Dispose();
        File.Move(_tmp, Path.GetFullPath(path), overwrite: true);
    }

    /// <summary>Without <see cref="Commit"/>: remove the partial file.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        Stream.Dispose();
        File.Delete(_tmp);
    }
}
