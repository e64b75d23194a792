using System.Numerics;
using DistEmu.Kernel.Workloads;

namespace DistEmu.Kernel.Sim;

/// <summary>
/// A task's op stream read ahead: the next ops, up to a barrier (the first op that is not an access or think time), are
/// buffered so the run-ahead knows what the task will touch (the run's address range) and the least emulated time it
/// needs before it can reach that barrier. Workloads are data: reading ahead never changes what the task does.
/// </summary>
public sealed class OpWindow
{
    private readonly IEnumerator<Op> _ops;
    private readonly Op[] _ring;
    private readonly int _mask;
    private readonly long[] _ringMinNs;
    private readonly long _accessMinNs;
    private readonly long _missMinNs;
    private readonly Cpu.Tlb? _tlb;
    private readonly int _pageShift;
    /// <summary>Highest page read since the last barrier: a page above it is not among the ops ahead of it.</summary>
    private long _maxVpn = long.MinValue;
    private long _pullsLeft;
    private int _head;
    private int _count;
    private bool _barrierBuffered;
    private bool _ended;

    /// <param name="ops">The stream.</param>
    /// <param name="capacity">Ops buffered at most.</param>
    /// <param name="limit">Ops the task runs at most (nothing past it is read).</param>
    /// <param name="accessMinNs">The least emulated time a load or store can take, whatever it meets.</param>
    /// <param name="missMinNs">The least a load or store takes when its page is not in the TLB.</param>
    /// <param name="tlb">The task's TLB: only the task fills it, so a page neither in it nor among the ops ahead misses.</param>
    public OpWindow(IEnumerator<Op> ops, int capacity, long limit, long accessMinNs, long missMinNs = 0, Cpu.Tlb? tlb = null, int pageShift = 12)
    {
        _ops = ops;
        _missMinNs = Math.Max(missMinNs, accessMinNs);
        _tlb = tlb;
        _pageShift = pageShift;
        _ring = new Op[(int)BitOperations.RoundUpToPowerOf2((uint)Math.Max(1, capacity))];
        _mask = _ring.Length - 1;
        _ringMinNs = new long[_ring.Length];
        _pullsLeft = limit;
        _accessMinNs = accessMinNs;
    }

    public Op Current { get; private set; }

    /// <summary>Ops of the current run still to execute, the current one included; 0 if the current op is a barrier.</summary>
    public int RunLeft => IsRunOp(Current.Kind) ? 1 + _count - (_barrierBuffered ? 1 : 0) : 0;
    /// <summary>Least emulated time the <see cref="RunLeft"/> ops take: the task cannot start the op after them sooner.</summary>
    public long RunMinNs => IsRunOp(Current.Kind) ? _currentMinNs + _bufferedMinNs : 0;
    /// <summary>The current run is the rest of the stream: the task never leaves it (only stops).</summary>
    public bool RunIsLast => IsRunOp(Current.Kind) && _ended && !_barrierBuffered;
    /// <summary>Lowest and highest address the current run's ops touch, of those read so far (Lo &gt; Hi: none).</summary>
    public long RunLo { get; private set; } = long.MaxValue;
    public long RunHi { get; private set; } = long.MinValue;

    /// <summary>Ops that touch only the task's own run range (or nothing) and end no run.</summary>
    public static bool IsRunOp(OpKind k) => k is OpKind.Read or OpKind.Write or OpKind.Compute;

    /// <summary>
    /// The least emulated time <paramref name="op"/> takes, read now. A load or store of a page that is not in the TLB and
    /// that no op ahead of it touches (pages read so far in this run all lie below it, as in a fault loop) misses, since
    /// nothing else fills this CPU's TLB and a shootdown only empties it.
    /// </summary>
    private long MinNs(in Op op)
    {
        if (op.Kind == OpKind.Compute) return Math.Max(0, op.Ns);
        long vpn = op.Addr >> _pageShift;
        bool first = vpn > _maxVpn;
        if (first) _maxVpn = vpn;
        return first && _tlb != null && !_tlb.Holds(vpn) ? _missMinNs : _accessMinNs;
    }

    private long _currentMinNs;

    public bool MoveNext()
    {
        if (_count == 0)
            Fill();
        if (_count == 0)
            return false;
        Current = _ring[_head];
        _currentMinNs = _ringMinNs[_head];
        _head = (_head + 1) & _mask;
        _count--;
        if (IsRunOp(Current.Kind))
        {
            _bufferedMinNs -= _currentMinNs;
        }
        else
        {
            _maxVpn = long.MinValue;
            // A barrier (a system call, a fork, pthread_barrier_wait): the run after it starts afresh, from what is read next.
            _barrierBuffered = false;
            RunLo = long.MaxValue;
            RunHi = long.MinValue;
        }
        // Without read-ahead (a window of one) the stream is read no sooner than before.
        if (_ring.Length > 1) Fill();
        return true;
    }

    /// <summary>Read ahead until the buffer is full, a barrier is buffered or the stream ends.</summary>
    private void Fill()
    {
        while (!_barrierBuffered && !_ended && _count < _ring.Length)
        {
            if (_pullsLeft <= 0 || !_ops.MoveNext())
            {
                _ended = true;
                break;
            }
            _pullsLeft--;
            var op = _ops.Current;
            int slot = (_head + _count) & _mask;
            _ring[slot] = op;
            _count++;
            if (!IsRunOp(op.Kind))
            {
                _barrierBuffered = true;
                break;
            }
            long minNs = MinNs(op);
            _ringMinNs[slot] = minNs;
            _bufferedMinNs += minNs;
            if (op.Kind != OpKind.Compute)
            {
                if (op.Addr < RunLo) RunLo = op.Addr;
                if (op.Addr > RunHi) RunHi = op.Addr;
            }
        }
    }

    private long _bufferedMinNs;
}
