using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace DistEmu.Kernel.Sched;

/// <summary>
/// The heap home of a suspended fault-path frame (see <see cref="EmuAsyncMethodBuilder{T}"/>): it is the ValueTask's
/// source for the caller, and holds the caller's continuation until the frame completes. Completion runs the
/// continuation inline, on the thread that completed the frame: the engine's thread under sim, the grain's turn under
/// orleans (the frames of one fault complete within the turn that resumed their innermost one).
/// </summary>
internal abstract class EmuAsyncBox<T> : IValueTaskSource<T>, IValueTaskSource
{
    private Action<object?>? _continuation;
    private object? _continuationState;
    private ExceptionDispatchInfo? _error;
    private T _result = default!;
    private bool _done;

    /// <summary>Bumped each time the box is reused, so a stale ValueTask is refused instead of reading another frame's result.</summary>
    internal short Version;

    internal void SetResult(T result)
    {
        _result = result;
        _done = true;
        Signal();
    }

    internal void SetException(Exception e)
    {
        _error = ExceptionDispatchInfo.Capture(e);
        _done = true;
        Signal();
    }

    private void Signal()
    {
        var c = _continuation;
        if (c is null) return;
        _continuation = null;
        c(_continuationState);
    }

    public ValueTaskSourceStatus GetStatus(short token)
    {
        CheckToken(token);
        return !_done ? ValueTaskSourceStatus.Pending : _error is null ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Faulted;
    }

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        CheckToken(token);
        if (_done)
        {
            continuation(state);
            return;
        }
        _continuation = continuation;
        _continuationState = state;
    }

    public T GetResult(short token)
    {
        CheckToken(token);
        if (!_done)
            throw new InvalidOperationException("an emulated frame's result was read before it completed");
        var error = _error;
        var result = _result;
        _error = null;
        _result = default!;
        _continuationState = null;
        _done = false;
        Version++;
        ReturnToPool();
        error?.Throw();
        return result;
    }

    void IValueTaskSource.GetResult(short token) => GetResult(token);

    private void CheckToken(short token)
    {
        if (token != Version)
            throw new InvalidOperationException("a ValueTask of the fault path was awaited twice, or after its frame was reused");
    }

    private protected abstract void ReturnToPool();
}

/// <summary>The box of one async method's state machine type, with a per-thread free list of reusable boxes.</summary>
internal sealed class EmuAsyncBox<T, TStateMachine> : EmuAsyncBox<T> where TStateMachine : IAsyncStateMachine
{
    /// <summary>
    /// Boxes free for reuse on this thread. Unbounded: it holds at most as many boxes as frames of this method were
    /// ever suspended at once on the thread (one per emulated task in the sim engine).
    /// </summary>
    [ThreadStatic] private static EmuAsyncBox<T, TStateMachine>? t_free;

    private EmuAsyncBox<T, TStateMachine>? _nextFree;
    private ExecutionContext? _context;
    public TStateMachine StateMachine = default!;
    public readonly Action MoveNextAction;

    private EmuAsyncBox() => MoveNextAction = MoveNext;

    public static EmuAsyncBox<T, TStateMachine> Rent()
    {
        var box = t_free;
        if (box is null)
            return new EmuAsyncBox<T, TStateMachine>();
        t_free = box._nextFree;
        box._nextFree = null;
        return box;
    }

    /// <summary>
    /// The execution context of the first suspension, when it flows (under orleans: request context, Activity). The sim
    /// engine suppresses the flow, so its frames resume without one.
    /// </summary>
    public void CaptureContext() => _context = ExecutionContext.Capture();

    private void MoveNext()
    {
        if (_context is null)
            StateMachine.MoveNext();
        else
            ExecutionContext.Run(_context, static s => ((EmuAsyncBox<T, TStateMachine>)s!).StateMachine.MoveNext(), this);
    }

    private protected override void ReturnToPool()
    {
        StateMachine = default!;
        _context = null;
        _nextFree = t_free;
        t_free = this;
    }
}
