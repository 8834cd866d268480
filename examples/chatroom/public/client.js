// The chatroom page (the tutorial's client.js, with text rendered as text
// and no inline handlers, for the Content-Security-Policy). It logs in
// again by itself after every reconnect.
(function () {
	'use strict';
	var d = document;

	function el(tag, className, text) {
		var e = d.createElement(tag);
		if (className) e.className = className;
		if (text !== undefined) e.textContent = text;
		return e;
	}

	var CHAT = window.CHAT = {
		msgObj: d.getElementById('message'),
		username: null,
		userid: null,
		socket: null,

		scrollToBottom: function () {
			var doc = d.getElementById('doc');
			doc.scrollTop = doc.scrollHeight;
		},

		logout: function () {
			location.reload();
		},

		submit: function () {
			var input = d.getElementById('content');
			var content = input.value;
			if (content !== '' && this.socket) {
				this.socket.emit('message', { userid: this.userid, username: this.username, content: content });
				input.value = '';
			}
			return false;
		},

		genUid: function () {
			return new Date().getTime() + '' + Math.floor(Math.random() * 899 + 100);
		},

		updateSysMsg: function (o, action) {
			var names = [];
			for (var key in o.onlineUsers) {
				if (Object.prototype.hasOwnProperty.call(o.onlineUsers, key)) names.push(o.onlineUsers[key]);
			}
			d.getElementById('onlinecount').textContent =
				'Online now: ' + o.onlineCount + ' — ' + names.join(', ');
			var section = el('section', 'system');
			section.appendChild(el('div', 'msg-system',
				o.user.username + (action === 'login' ? ' joined the chatroom' : ' left the chatroom')));
			this.msgObj.appendChild(section);
			this.scrollToBottom();
		},

		showMessage: function (obj) {
			var isme = obj.userid === CHAT.userid;
			var section = el('section', isme ? 'user' : 'service');
			var content = el('div', null, String(obj.content));
			var name = el('span', null, String(obj.username));
			if (isme) {
				section.appendChild(content);
				section.appendChild(name);
			} else {
				section.appendChild(name);
				section.appendChild(content);
			}
			CHAT.msgObj.appendChild(section);
			CHAT.scrollToBottom();
		},

		usernameSubmit: function () {
			var input = d.getElementById('username');
			var username = input.value.trim();
			if (username !== '') {
				input.value = '';
				d.getElementById('loginbox').hidden = true;
				d.getElementById('chatbox').hidden = false;
				this.init(username);
			}
			return false;
		},

		init: function (username) {
			var self = this;
			this.userid = this.genUid();
			this.username = username;
			d.getElementById('showusername').textContent = this.username;
			this.socket = io();
			// every (re)connect logs in again: a restarted server knows nobody
			this.socket.on('connect', function () {
				self.socket.emit('login', { userid: self.userid, username: self.username });
			});
			this.socket.on('login', function (o) { CHAT.updateSysMsg(o, 'login'); });
			this.socket.on('logout', function (o) { CHAT.updateSysMsg(o, 'logout'); });
			this.socket.on('message', CHAT.showMessage);
			d.getElementById('content').focus();
		}
	};

	d.getElementById('loginform').addEventListener('submit', function (e) {
		e.preventDefault();
		CHAT.usernameSubmit();
	});
	d.getElementById('content').addEventListener('keydown', function (e) {
		if (e.keyCode === 13) CHAT.submit();
	});
	d.getElementById('mjr_send').addEventListener('click', function () { CHAT.submit(); });
	d.getElementById('logout').addEventListener('click', function () { CHAT.logout(); });
})();
