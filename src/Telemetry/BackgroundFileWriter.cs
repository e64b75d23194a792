using System.Buffers;
using System.Collections.Concurrent;

namespace DistEmu.Telemetry;

/// <summary>
/// The buffer a trace file's JSON writer fills, written to the file by a thread of its own: the run's thread formats
/// into a chunk and hands full chunks over, so the write system calls (hundreds of MB for a fully traced run) do not
/// stall the emulation. Bounded: at most <c>queued</c> full chunks wait; a writer that falls behind makes the run wait
/// for it rather than grow. A write error is rethrown by <see cref="Complete"/>.
/// </summary>
public sealed class BackgroundFileWriter : IBufferWriter<byte>, IDisposable
{
    private readonly Stream _target;
    private readonly int _chunkSize;
    private readonly BlockingCollection<(byte[] Chunk, int Length)> _full;
    private readonly ConcurrentBag<byte[]> _free = new();
    private readonly Thread _thread;
    private byte[] _chunk;
    private int _used;
    private Exception? _error;
    private bool _completed;

    public BackgroundFileWriter(Stream target, int chunkSize = 1 << 18, int queued = 8)
    {
        _target = target;
        _chunkSize = chunkSize;
        _full = new BlockingCollection<(byte[], int)>(queued);
        _chunk = new byte[chunkSize];
        _thread = new Thread(WriteLoop) { IsBackground = true, Name = "distemu trace file writer" };
        _thread.Start();
    }

    private void WriteLoop()
    {
        foreach (var (chunk, length) in _full.GetConsumingEnumerable())
        {
            if (_error is null)
            {
                try
                {
                    _target.Write(chunk, 0, length);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or ObjectDisposedException)
                {
                    _error = e;
                }
            }
            _free.Add(chunk);
        }
    }

    private void Submit()
    {
        if (_used == 0) return;
        _chunk = Exchange(_chunk, _used);
        _used = 0;
    }

    /// <summary>Hands a filled buffer of the caller's own to the writer thread and returns an empty one (of
    /// <see cref="ChunkSize"/> bytes): for a caller that fills buffers itself rather than through GetSpan / Advance.</summary>
    public byte[] Exchange(byte[] filled, int length)
    {
        if (length > 0) _full.Add((filled, length));
        else _free.Add(filled);
        return _free.TryTake(out var next) ? next : new byte[_chunkSize];
    }

    public int ChunkSize => _chunkSize;

    public void Advance(int count) => _used += count;

    public Memory<byte> GetMemory(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _chunk.AsMemory(_used);
    }

    public Span<byte> GetSpan(int sizeHint = 0)
    {
        Reserve(sizeHint);
        return _chunk.AsSpan(_used);
    }

    private void Reserve(int sizeHint)
    {
        int need = Math.Max(sizeHint, 1);
        if (_chunk.Length - _used >= need) return;
        Submit();
        if (_chunk.Length < need) _chunk = new byte[need];
    }

    /// <summary>Writes what is left, waits for the thread, and rethrows its error if a write failed.</summary>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        Submit();
        _full.CompleteAdding();
        _thread.Join();
        if (_error != null) throw new IOException($"writing the trace file failed: {_error.Message}", _error);
    }

    /// <summary>Stops the thread (what was handed over is still written).</summary>
    public void Dispose()
    {
        if (!_completed)
        {
            _completed = true;
            _full.CompleteAdding();
            _thread.Join();
        }
        _full.Dispose();
    }
}
